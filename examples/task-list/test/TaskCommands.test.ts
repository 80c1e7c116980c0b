import { assert, describe, it } from "@effect/vitest"
import { Decider } from "@evently/machine"
import { EventStore } from "@evently/store"
import { DeciderSpec } from "@evently/testing"
import * as Effect from "effect/Effect"
import { Command, streamOf, TaskDecider, Tasks } from "../src/TaskCommands.ts"
import { Task } from "../src/TaskMachine.ts"

const created = Task.Created.make({ description: "Write the report" })
const assigned = Task.Assigned.make({ assignee: "ada" })
const scheduled = Task.Scheduled.make({ deadline: "2030-01-31" })
const started = Task.Started.make({})
const spec = DeciderSpec.make(TaskDecider)

describe("the task commands", () => {
  it("create, assign, schedule and start a task", () => {
    spec
      .given([])
      .when(Command.Create.make({ description: "Write the report" }))
      .then([created])
    spec
      .given([created])
      .when(Command.Assign.make({ assignee: "ada" }))
      .then([assigned])
    spec
      .given([created, assigned])
      .when(Command.Schedule.make({ deadline: "2030-01-31" }))
      .then([scheduled])
    spec.given([created, assigned, scheduled]).when(Command.Start.make({})).then([started])
    assert.deepStrictEqual(Decider.fold(TaskDecider, [created, assigned, scheduled, started]).tags, ["Started"])
  })

  it("assigning or scheduling a started task reassigns or reschedules it", () => {
    const history = [created, assigned, scheduled, started]
    spec
      .given(history)
      .when(Command.Assign.make({ assignee: "grace" }))
      .then([Task.Reassigned.make({ assignee: "grace" })])
    spec
      .given(history)
      .when(Command.Schedule.make({ deadline: "2030-02-28" }))
      .then([Task.Rescheduled.make({ deadline: "2030-02-28" })])
    const after = Decider.fold(TaskDecider, [...history, Task.Reassigned.make({ assignee: "grace" })])
    assert.deepStrictEqual([after.tags, after.data.assignee], [["Started"], "grace"])
  })

  it("starting a task that is not scheduled is refused by the machine, with its message", () => {
    const refusal = spec.given([created, assigned]).when(Command.Start.make({})).thenFails("IllegalTransition")
    assert.strictEqual(refusal.message, "Event type 'Started' may not follow [Created, Assigned]")
  })

  it("a finished task takes no more commands", () => {
    const refusal = spec
      .given([created, assigned, scheduled, started, Task.Completed.make({})])
      .when(Command.Cancel.make({}))
      .thenFails("IllegalTransition")
    assert.strictEqual(refusal.message, "Event type 'Canceled' may not follow [Completed]")
  })
})

describe("the Tasks service", () => {
  it.effect("handles a task's commands on its stream, named by StreamName", () =>
    Effect.gen(function* () {
      const tasks = yield* Tasks
      const stream = yield* streamOf("report")
      assert.strictEqual(stream, "task-report")
      yield* tasks.handle(stream, Command.Create.make({ description: "Write the report" }))
      const refused = yield* Effect.flip(tasks.handle(stream, Command.Start.make({})))
      assert.strictEqual(refused._tag, "IllegalTransition")
      const bad = yield* Effect.flip(streamOf(""))
      assert.strictEqual(bad._tag, "InvalidStreamName")
    }).pipe(Effect.provide(Tasks.layer), Effect.provide(EventStore.layerMemory))
  )
})
