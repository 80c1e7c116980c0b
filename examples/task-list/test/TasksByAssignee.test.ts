import { assert, layer } from "@effect/vitest"
import { PgliteClient } from "@evently/pglite"
import { PgEventStore, PgSchema, PgSubscriptions } from "@evently/postgres"
import * as PgProjections from "@evently/postgres/PgProjections"
import { CommandHandler } from "@evently/store"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import { Command, TaskCodec, TaskDecider } from "../src/TaskCommands.ts"
import * as TasksByAssignee from "../src/TasksByAssignee.ts"

const Embedded = Layer.mergeAll(PgEventStore.layer(), PgSubscriptions.layer({ lockRetryInterval: "100 millis" })).pipe(
  Layer.provideMerge(Layer.provideMerge(PgSchema.layerMigrate, PgliteClient.layer()).pipe(Layer.orDie))
)

const states = Effect.map(PgProjections.builds(TasksByAssignee.name), (builds) =>
  builds.map((b) => `v${b.version} ${b.state}`)
)

layer(Embedded, { excludeTestServices: true, timeout: "60 seconds" })("TasksByAssignee", (it) => {
  it.effect("version 2 (counts per status) is rolled out blue/green beside version 1 on the embedded database", () =>
    Effect.gen(function* () {
      const tasks = yield* CommandHandler.make({ decider: TaskDecider, codec: TaskCodec })
      const v1 = yield* Effect.forkChild(
        PgProjections.run(TasksByAssignee.projection, { registryPollInterval: "100 millis" })
      )
      yield* tasks.handle("task-a", Command.Create.make({ description: "Write" }))
      yield* tasks.handle("task-a", Command.Assign.make({ assignee: "ada" }))
      yield* tasks.handle("task-a", Command.Schedule.make({ deadline: "2030-01-01" }))
      yield* tasks.handle("task-a", Command.Start.make({}))
      yield* tasks.handle("task-b", Command.Create.make({ description: "Read" }))
      yield* tasks.handle("task-c", Command.Create.make({ description: "Sleep" }))
      yield* TasksByAssignee.waitUntilCaughtUp
      const before = yield* TasksByAssignee.rows(["task-a", "task-b", "task-c"])
      assert.deepStrictEqual(
        before.map((row) => [row.task, row.assignee, row.status]),
        [
          ["task-a", "ada", "in progress"],
          ["task-b", null, "open"],
          ["task-c", null, "open"]
        ]
      )
      assert.deepStrictEqual(yield* states, ["v1 active"])

      // Deploy version 2: it builds from the beginning while version 1 serves, then takes over.
      const v2 = yield* Effect.forkChild(
        PgProjections.run(TasksByAssignee.projectionV2, { registryPollInterval: "100 millis" })
      )
      yield* Effect.repeat(states, { until: (s) => s.includes("v2 active"), schedule: Schedule.spaced("50 millis") })
      assert.deepStrictEqual(yield* states, ["v1 retired", "v2 active"])
      assert.deepStrictEqual(yield* TasksByAssignee.rows(["task-a", "task-b", "task-c"]), before)
      assert.deepStrictEqual(yield* TasksByAssignee.counts, [
        { status: "in progress", tasks: 1 },
        { status: "open", tasks: 2 }
      ])

      yield* tasks.handle("task-a", Command.Complete.make({}))
      yield* TasksByAssignee.waitUntilCaughtUp
      assert.deepStrictEqual(yield* TasksByAssignee.counts, [
        { status: "done", tasks: 1 },
        { status: "open", tasks: 2 }
      ])
      yield* Effect.forEach([v1, v2], Fiber.interrupt)
    })
  )
})
