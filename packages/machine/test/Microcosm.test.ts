/**
 * The behaviours where the machine once disagreed with microcosm-eventsource (issue 17), one test each. Each test says
 * what microcosm does and checks that the machine now does the same, or, where we deliberately differ, what we do.
 */
import { assert, describe, it } from "@effect/vitest"
import { Accumulate, Arbitraries, Graph, Machine, Rule } from "@evently/machine"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"

const { nothing, event, anyOf } = Rule
const { keep, difference } = Accumulate

const failure = <A, E>(result: Result.Result<A, E>): E => {
  if (Result.isSuccess(result)) return assert.fail(`expected a failure, got ${JSON.stringify(result.success)}`)
  return result.failure
}

const Light = Schema.TaggedUnion({ On: {}, Off: {}, Dimmed: {}, Checked: {} })
const lights = Machine.make(Light, {
  On: { follows: nothing() },
  Off: { follows: event("On"), accumulate: difference("On") },
  Dimmed: { follows: event("On") },
  Checked: { follows: nothing(), accumulate: keep() }
})

describe("agreement with microcosm-eventsource", () => {
  // microcosm's EventFactory.create_auto_transition_event calls create(...) again with the triggering call's fields,
  // which validates the required fields first.
  it("1. an automatic event is checked against requires and carries the fields its Schema declares", () => {
    const Flow = Schema.TaggedUnion({
      Opened: { assignee: Schema.optional(Schema.String), note: Schema.optional(Schema.String) },
      Routed: { assignee: Schema.optional(Schema.String) },
      Closed: {}
    })
    const machine = Machine.make(Flow, {
      Opened: { follows: nothing() },
      Routed: { follows: event("Opened"), auto: true, requires: ["assignee"] },
      Closed: { follows: event("Routed") }
    })
    const bare = Flow.cases.Opened.make({})
    const error = failure(machine.decide([bare], machine.initial))
    assert.instanceOf(error, Machine.MissingRequiredField)
    assert.strictEqual(error.message, "Event type 'Routed' requires field 'assignee'")

    const opened = Flow.cases.Opened.make({ assignee: "ada", note: "urgent" })
    const decided = Result.getOrThrow(machine.decide([opened], machine.initial))
    assert.deepStrictEqual(decided, [opened, Flow.cases.Routed.make({ assignee: "ada" })])
  })

  // microcosm: `kwargs.get(required_field) is None` is missing, and None is Python's null.
  it("2. a required field that is null is missing, in transition and in decode", () => {
    const Note = Schema.TaggedUnion({ Written: { text: Schema.NullOr(Schema.String) } })
    const machine = Machine.make(Note, { Written: { follows: nothing(), requires: ["text"] } })
    const error = failure(machine.transition(machine.initial, Note.cases.Written.make({ text: null })))
    assert.instanceOf(error, Machine.MissingRequiredField)
    assert.deepStrictEqual(error.fields, ["text"])
    assert.instanceOf(failure(Machine.decode(machine, { _tag: "Written", text: null })), Machine.MissingRequiredField)
    assert.isTrue(Result.isSuccess(machine.transition(machine.initial, Note.cases.Written.make({ text: "hi" }))))
  })

  // microcosm: the rollup's `last.of(column)` is `coalesce(value, state)` over the events, so a null never wins.
  it("2. the default data keeps the latest non-null value of each field", () => {
    const Card = Schema.TaggedUnion({
      Opened: { owner: Schema.String },
      Edited: { owner: Schema.NullOr(Schema.String), note: Schema.NullOr(Schema.String) }
    })
    const machine = Machine.make(Card, {
      Opened: { follows: nothing() },
      Edited: { follows: anyOf("Opened", "Edited") }
    })
    const state = Result.getOrThrow(
      machine.fold([Card.cases.Opened.make({ owner: "ada" }), Card.cases.Edited.make({ owner: null, note: null })])
    )
    assert.deepStrictEqual(state.data, { owner: "ada" })
  })

  // microcosm: validate_required_fields runs before validate_transition and lists every missing field.
  it("3. required fields are checked before the rule, and every missing one is named", () => {
    const Task = Schema.TaggedUnion({
      Created: {},
      Scheduled: { deadline: Schema.optional(Schema.String), owner: Schema.optional(Schema.String) }
    })
    const machine = Machine.make(Task, {
      Created: { follows: nothing() },
      Scheduled: { follows: event("Created"), requires: ["deadline", "owner"] }
    })
    const error = failure(machine.transition(machine.initial, Task.cases.Scheduled.make({})))
    assert.instanceOf(error, Machine.MissingRequiredField)
    assert.deepStrictEqual(error.fields, ["deadline", "owner"])
    assert.strictEqual(error.message, "Event type 'Scheduled' requires fields 'deadline', 'owner'")
    const decoded = failure(Machine.decode(machine, { _tag: "Scheduled" }))
    assert.deepStrictEqual(decoded instanceof Machine.MissingRequiredField ? decoded.fields : [], ["deadline", "owner"])
  })

  // microcosm: next_version(None) is 1 whatever the event; a restarting event after a parent is version + 1.
  it("4. a restarting first event starts revision 1; a later one bumps it", () => {
    const Doc = Schema.TaggedUnion({ Drafted: { text: Schema.String } })
    const machine = Machine.make(Doc, {
      Drafted: { follows: anyOf(nothing(), "Drafted"), restarting: true }
    })
    const drafted = Doc.cases.Drafted.make({ text: "v" })
    const first = Result.getOrThrow(machine.fold([drafted]))
    assert.strictEqual(first.revision, 1)
    assert.strictEqual(first.eventCount, 1)
    assert.strictEqual(Result.getOrThrow(machine.fold([drafted, drafted])).revision, 2)
  })

  // microcosm: Nothing() is `not state`, and validate_transition says "may not be initial" whenever the state is empty.
  it("5. nothing() holds on an empty control state, also one emptied by difference(...)", () => {
    const machine = lights
    const { On, Off, Dimmed } = Light.cases
    const emptied = Result.getOrThrow(machine.fold([On.make({}), Off.make({})]))
    assert.deepStrictEqual(emptied.tags, [])
    assert.deepStrictEqual(machine.allowed(emptied), ["On", "Checked"])
    assert.isTrue(Result.isSuccess(machine.fold([On.make({}), Off.make({}), On.make({})])))
    assert.strictEqual(
      failure(machine.transition(emptied, Dimmed.make({}))).message,
      "Event type 'Dimmed' may not be initial"
    )
    const edges = Graph.edges(Graph.make(machine))
    assert.include(edges, "[On] --Off--> *")
    assert.include(edges, "* --Checked--> *")
    assert.include(Graph.toMermaid(machine), "empty --> empty: Checked")
  })

  it.prop(
    "5. the generators agree: after an emptied state, a refused event is refused as not initial",
    { invalid: Arbitraries.invalidNext(lights, { maxLength: 4 }) },
    ({ invalid }) => {
      const error = failure(lights.transition(invalid.state, invalid.event))
      if (invalid.state.tags.length === 0) assert.match(error.message, /may not be initial$/)
      else assert.match(error.message, /may not follow \[.+\]$/)
    }
  )

  // microcosm: assert_only_valid_transitions walks all_states(), the states reached by at least one event; automatic
  // events only ever follow an event.
  it("6. the ambiguity check ignores the empty history, but not an empty state reached by an event", () => {
    const Job = Schema.TaggedUnion({ Queued: {}, Skipped: {}, Reset: {} })
    const built = Machine.makeResult(Job, {
      Queued: { follows: nothing() },
      Skipped: { follows: nothing(), auto: true },
      Reset: { follows: event("Queued"), accumulate: difference("Queued") }
    })
    const error = failure(built)
    assert.strictEqual(error.state, "*")
    assert.strictEqual(
      error.message,
      "Invalid machine in state *: automatic transition 'Skipped' competes with 'Queued'"
    )
    const machine = Machine.make(Job, {
      Queued: { follows: nothing() },
      Skipped: { follows: nothing(), auto: true },
      Reset: { follows: event("Queued") }
    })
    const queued = Job.cases.Queued.make({})
    assert.deepStrictEqual(Result.getOrThrow(machine.decide([queued], machine.initial)), [queued])
  })
})
