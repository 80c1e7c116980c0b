import { Machine, Rule } from "@evently/machine"
import { CommandHandler, EventCodec, EventStore } from "@evently/store"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"

const TaskEvent = Schema.TaggedUnion({
  Created: { title: Schema.String },
  Started: {},
  Completed: {}
})
type TaskEvent = typeof TaskEvent.Type
const TaskMachine = Machine.make(TaskEvent, {
  Created: { follows: Rule.nothing() },
  Started: { follows: Rule.event("Created") },
  Completed: { follows: Rule.event("Started") }
})

type Command =
  | { readonly _tag: "Create"; readonly title: string }
  | { readonly _tag: "Start" }
  | { readonly _tag: "Complete" }

// Pure: propose events. The machine checks them, so an illegal one is refused with IllegalTransition.
const decide = (command: Command): Result.Result<ReadonlyArray<TaskEvent>> => {
  switch (command._tag) {
    case "Create":
      return Result.succeed([TaskEvent.cases.Created.make({ title: command.title })])
    case "Start":
      return Result.succeed([TaskEvent.cases.Started.make({})])
    case "Complete":
      return Result.succeed([TaskEvent.cases.Completed.make({})])
  }
}

export const program = Effect.gen(function* () {
  const tasks = yield* CommandHandler.make({
    decider: Machine.decider(TaskMachine, decide),
    codec: EventCodec.make(TaskEvent)
  })
  // Load, decide, append with the version read; on a stale version reload and decide again (RetryPolicy).
  const created = yield* tasks.handle("task-1", { _tag: "Create", title: "Ship commands" }, { commandId: "c-1" })
  // The same command id again appends nothing and returns the first result.
  const again = yield* tasks.handle("task-1", { _tag: "Create", title: "Ship commands" }, { commandId: "c-1" })
  const started = yield* tasks.handle("task-1", { _tag: "Start" })
  // A refusal is a typed failure and writes nothing.
  const refused = yield* Effect.flip(tasks.handle("task-1", { _tag: "Create", title: "Twice" }))
  return {
    versions: [created.version, again.version, started.version],
    duplicate: again.duplicate,
    state: started.state.tags,
    refused: refused.message
  }
})

// In memory here; on Postgres provide PgEventStore.layerConfig() (and PgSnapshots.layer for snapshots).
if (import.meta.main) {
  Effect.runPromise(program.pipe(Effect.provide(EventStore.layerMemory))).then(console.log)
}
