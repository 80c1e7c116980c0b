import { assert, describe, it } from "@effect/vitest"
import { Arbitraries, Graph, Machine, Rule } from "@evently/machine"
import { DeciderSpec } from "@evently/testing"
import * as Result from "effect/Result"
import { Task, TaskMachine, type TaskEvent } from "../src/TaskMachine.ts"

const created = Task.Created.make({ description: "Write the report" })
const assigned = Task.Assigned.make({ assignee: "ada" })
const scheduled = Task.Scheduled.make({ deadline: "2030-01-31" })
const started = Task.Started.make({})
const reassigned = Task.Reassigned.make({ assignee: "grace" })
const rescheduled = Task.Rescheduled.make({ deadline: "2030-02-28" })
const revised = Task.Revised.make({ description: "Write the short report" })
const canceled = Task.Canceled.make({})
const completed = Task.Completed.make({})

const spec = DeciderSpec.make(TaskMachine)
const fold = (events: ReadonlyArray<TaskEvent>) => Result.getOrThrow(TaskMachine.fold(events))
const refusal = (events: ReadonlyArray<TaskEvent>, event: TaskEvent) => {
  const result = TaskMachine.transition(fold(events), event)
  assert.isTrue(Result.isFailure(result))
  return Result.isFailure(result) ? result.failure : undefined
}

describe("the task machine, rule by rule", () => {
  it("a task is created with a description, and only created first", () => {
    spec.given([]).when([created]).then([created])
    const state = fold([created])
    assert.deepStrictEqual(state.tags, ["Created"])
    assert.strictEqual(state.data.description, "Write the report")
    assert.strictEqual(refusal([], assigned)?.message, "Event type 'Assigned' may not be initial")
    spec.given([created]).when([created]).thenFails("IllegalTransition")
  })

  it("after it is created it can be assigned and scheduled, in either order", () => {
    spec.given([created]).when([assigned, scheduled]).then([assigned, scheduled])
    spec.given([created]).when([scheduled, assigned]).then([scheduled, assigned])
    assert.deepStrictEqual(fold([created, scheduled, assigned]).tags, ["Created", "Assigned", "Scheduled"])
    spec.given([created, assigned]).when([assigned]).thenFails("IllegalTransition")
    spec.given([created, scheduled]).when([scheduled]).thenFails("IllegalTransition")
  })

  it("after both it may be started, and not before", () => {
    spec.given([created, assigned, scheduled]).when([started]).then([started])
    assert.strictEqual(refusal([created], started)?.message, "Event type 'Started' may not follow [Created]")
    assert.strictEqual(
      refusal([created, assigned], started)?.message,
      "Event type 'Started' may not follow [Created, Assigned]"
    )
    assert.deepStrictEqual(fold([created, assigned, scheduled, started]).tags, ["Started"])
  })

  it("after it is started it may be reassigned or rescheduled any number of times", () => {
    const history = [created, assigned, scheduled, started]
    spec
      .given(history)
      .when([reassigned, rescheduled, reassigned, rescheduled])
      .then([reassigned, rescheduled, reassigned, rescheduled])
    const state = fold([...history, reassigned, rescheduled, reassigned])
    assert.deepStrictEqual(state.tags, ["Started"])
    assert.strictEqual(state.data.assignee, "grace")
    assert.strictEqual(state.data.deadline, "2030-02-28")
    spec.given([created, assigned]).when([reassigned]).thenFails("IllegalTransition")
  })

  it("then canceled or completed, both terminal", () => {
    const history = [created, assigned, scheduled, started]
    spec.given(history).when([canceled]).then([canceled])
    spec.given(history).when([completed]).then([completed])
    for (const end of [canceled, completed]) {
      assert.deepStrictEqual(TaskMachine.allowed(fold([...history, end])), [])
      spec
        .given([...history, end])
        .when([revised])
        .thenFails("IllegalTransition")
    }
    assert.strictEqual(
      refusal([...history, completed], reassigned)?.message,
      "Event type 'Reassigned' may not follow [Completed]"
    )
  })

  it("before it is canceled or completed it may be revised at any time, back to the initial state as a new revision", () => {
    for (const history of [
      [created],
      [created, assigned],
      [created, scheduled],
      [created, assigned, scheduled],
      [created, assigned, scheduled, started, reassigned]
    ]) {
      spec.given(history).when([revised]).then([revised])
      const state = fold([...history, revised])
      assert.deepStrictEqual(state.tags, ["Created"])
      assert.strictEqual(state.revision, 2)
      assert.deepStrictEqual(state.data, { description: "Write the short report" })
    }
    assert.strictEqual(fold([created, revised, revised, assigned]).revision, 3)
  })

  it("assigning requires an assignee and scheduling a deadline, named when missing", () => {
    const missing = Machine.decode(TaskMachine, { _tag: "Assigned" })
    assert.isTrue(Result.isFailure(missing))
    if (Result.isFailure(missing)) assert.include(missing.failure.message, "assignee")
    const decoded = Machine.decode(TaskMachine, { _tag: "Scheduled", deadline: "2030-01-31" })
    assert.deepStrictEqual(decoded, Result.succeed(scheduled))
  })

  it("a command decider refuses an illegal event from a buggy decide", () => {
    type Command = { readonly _tag: "Start" } | { readonly _tag: "Finish" }
    const decider = Machine.decider(TaskMachine, (command: Command) =>
      Result.succeed(command._tag === "Start" ? [started] : [completed])
    )
    DeciderSpec.given(decider, [created, assigned, scheduled]).when({ _tag: "Start" }).then([started])
    const error = DeciderSpec.given(decider, [created]).when({ _tag: "Finish" }).thenFails("IllegalTransition")
    assert.strictEqual(error.message, "Event type 'Completed' may not follow [Created]")
    DeciderSpec.given(decider, [created, assigned, scheduled, started, completed])
      .when({ _tag: "Start" })
      .thenFails("IllegalTransition")
  })
})

describe("the task machine's graph", () => {
  const graph = Graph.make(TaskMachine)

  it("has the seed's states, edges, initial and terminal event types", () => {
    assert.deepStrictEqual(graph.initialEventTypes, ["Created"])
    assert.deepStrictEqual(graph.terminalEventTypes, ["Canceled", "Completed"])
    assert.deepStrictEqual(
      graph.states.map((s) => s.key),
      [
        "*",
        "[Created]",
        "[Created, Assigned]",
        "[Created, Scheduled]",
        "[Created, Assigned, Scheduled]",
        "[Started]",
        "[Canceled]",
        "[Completed]"
      ]
    )
    assert.deepStrictEqual(Graph.edges(graph), [
      "* --Created--> [Created]",
      "[Created] --Assigned--> [Created, Assigned]",
      "[Created] --Scheduled--> [Created, Scheduled]",
      "[Created] --Revised--> [Created]",
      "[Created, Assigned] --Scheduled--> [Created, Assigned, Scheduled]",
      "[Created, Assigned] --Revised--> [Created]",
      "[Created, Scheduled] --Assigned--> [Created, Assigned, Scheduled]",
      "[Created, Scheduled] --Revised--> [Created]",
      "[Created, Assigned, Scheduled] --Started--> [Started]",
      "[Created, Assigned, Scheduled] --Revised--> [Created]",
      "[Started] --Reassigned--> [Started]",
      "[Started] --Rescheduled--> [Started]",
      "[Started] --Revised--> [Created]",
      "[Started] --Canceled--> [Canceled]",
      "[Started] --Completed--> [Completed]"
    ])
  })

  it("draws the same edges in Mermaid", () => {
    const mermaid = Graph.toMermaid(TaskMachine)
    assert.isTrue(mermaid.startsWith("stateDiagram-v2\n"))
    for (const line of [
      '  state "Created" as s0',
      '  state "Started" as s4',
      "  [*] --> s0: Created",
      "  s0 --> s1: Assigned",
      "  s0 --> s0: Revised ↺",
      "  s3 --> s4: Started",
      "  s4 --> s4: Reassigned",
      "  s4 --> s0: Revised ↺",
      "  s4 --> s5: Canceled",
      "  s4 --> s6: Completed",
      "  s5 --> [*]",
      "  s6 --> [*]"
    ]) {
      assert.include(mermaid.split("\n"), line)
    }
    assert.strictEqual(mermaid.split("\n").filter((l) => l.includes("-->")).length, 15 + 2)
  })
})

describe("the task machine, on generated histories", () => {
  const runs = { arbitrary: { runs: 1000 } }
  const terminal = new Set(
    Graph.make(TaskMachine)
      .states.filter((s) => s.terminal)
      .map((s) => s.key)
  )

  it.prop(
    "every valid history folds without error",
    { history: Arbitraries.validHistory(TaskMachine) },
    ({ history }) => {
      const folded = TaskMachine.fold(history)
      assert.isTrue(Result.isSuccess(folded))
      if (Result.isSuccess(folded)) assert.deepStrictEqual(folded.success, TaskMachine.replay(history))
    },
    runs
  )

  it.prop(
    "every event the machine rejects is indeed not allowed by its rule",
    { invalid: Arbitraries.invalidNext(TaskMachine) },
    ({ invalid }) => {
      const result = TaskMachine.transition(invalid.state, invalid.event)
      assert.isTrue(Result.isFailure(result))
      if (Result.isFailure(result)) {
        const error = result.failure
        assert.strictEqual(error._tag, "IllegalTransition")
        if (error._tag === "IllegalTransition") {
          assert.notInclude(error.allowed, invalid.event._tag)
          assert.deepStrictEqual(error.state, invalid.state.tags)
        }
      }
      const rule = TaskMachine.rules[invalid.event._tag].follows
      assert.isFalse(Rule.holds(rule, new Set(invalid.state.tags)))
    },
    runs
  )

  it.prop(
    "terminal states accept nothing",
    { history: Arbitraries.validHistory(TaskMachine, { maxLength: 16 }) },
    ({ history }) => {
      const state = TaskMachine.replay(history)
      const last = history.at(-1)?._tag
      const ended = last === "Canceled" || last === "Completed"
      assert.strictEqual(ended, terminal.has(`[${state.tags.join(", ")}]`))
      if (ended) {
        assert.deepStrictEqual(TaskMachine.allowed(state), [])
        for (const tag of TaskMachine.eventTypes) {
          assert.isTrue(Result.isFailure(TaskMachine.transition(state, { ...revised, _tag: tag } as TaskEvent)))
        }
      }
    },
    runs
  )

  it.prop(
    "revising bumps the revision and returns to the initial state",
    { history: Arbitraries.validHistory(TaskMachine), event: Arbitraries.event(TaskMachine, "Revised") },
    ({ history, event }) => {
      const before = TaskMachine.replay(history)
      const after = TaskMachine.transition(before, event)
      if (TaskMachine.allowed(before).includes("Revised")) {
        assert.isTrue(Result.isSuccess(after))
        if (Result.isSuccess(after)) {
          assert.strictEqual(after.success.revision, before.revision + 1)
          assert.deepStrictEqual(after.success.tags, ["Created"])
          assert.deepStrictEqual(TaskMachine.allowed(after.success), TaskMachine.allowed(TaskMachine.replay([created])))
          assert.deepStrictEqual(after.success.data, { description: event.description })
        }
      } else {
        assert.isTrue(Result.isFailure(after))
      }
      const revisions = history.filter((e) => e._tag === "Revised").length
      assert.strictEqual(before.revision, 1 + revisions)
    },
    runs
  )
})
