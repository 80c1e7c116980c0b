/**
 * Property tests against a reference interpreter of the grammar, written here from the README's definitions (not from
 * `Machine.ts`): for every generated valid history `fold` agrees with it, automatic events come where it says, and for
 * every next event, valid or not, `transition` accepts or refuses as it does, the refusal naming the event and state.
 */
import { assert, describe, it } from "@effect/vitest"
import { Accumulate, Arbitraries, Machine, Rule } from "@evently/machine"
import * as Arbitrary from "effect/Arbitrary"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"

// ---------------------------------------------------------------------------------------------------------------
// The reference, from the README: the control state is the set of event types accumulated so far, plus a revision
// (1 from the first event, + 1 for each later restarting event) and the number of events.
// ---------------------------------------------------------------------------------------------------------------

type Tags = ReadonlySet<string>
type Fields = Readonly<Record<string, unknown>>

interface Ref {
  readonly tags: Tags
  readonly revision: number
  readonly count: number
  readonly data: Fields
}

const start: Ref = { tags: new Set(), revision: 1, count: 0, data: {} }

/**
 * `event("X")` holds when X is in the state; `nothing()` when the state is empty; `allOf`, `anyOf` and `butNot`
 * combine; a predicate is asked.
 */
const refHolds = (rule: Rule.Rule<string>, tags: Tags): boolean => {
  switch (rule._tag) {
    case "Event":
      return tags.has(rule.tag)
    case "Nothing":
      return tags.size === 0
    case "AllOf":
      return rule.rules.every((r) => refHolds(r, tags))
    case "AnyOf":
      return rule.rules.some((r) => refHolds(r, tags))
    case "ButNot":
      return !refHolds(rule.rule, tags)
    case "Predicate":
      return rule.test(tags)
  }
}

/** `current()` is {tag}, `keep()` the same, `union()` adds the tag, `alias(X)` is {X}, and so on. */
const refAccumulate = (accumulate: Accumulate.Accumulate<string>, tag: string, tags: Tags): Tags => {
  switch (accumulate._tag) {
    case "Current":
      return new Set([tag])
    case "Keep":
      return tags
    case "Union":
      return new Set([...tags, tag])
    case "Alias":
      return new Set([accumulate.tag])
    case "Addition":
      return new Set([...tags, ...accumulate.tags])
    case "Difference":
      return new Set([...tags].filter((t) => !accumulate.tags.includes(t)))
    case "Compose": {
      let out = tags
      for (const step of accumulate.steps) out = refAccumulate(step, tag, out)
      return out
    }
    case "Custom":
      return new Set(accumulate.apply(tags, tag))
  }
}

type Outcome =
  | { readonly _tag: "Accepted"; readonly state: Ref }
  | { readonly _tag: "Missing"; readonly fields: ReadonlyArray<string> }
  | { readonly _tag: "Refused" }

const fieldsOf = (event: { readonly _tag: string }): Fields =>
  Object.fromEntries(Object.entries(event).filter(([key, value]) => key !== "_tag" && value !== undefined))

/** The fields whose latest value the data keeps: the non-null ones. */
const valuesOf = (event: { readonly _tag: string }): Fields =>
  Object.fromEntries(Object.entries(fieldsOf(event)).filter(([, value]) => value !== null))

/**
 * Required fields first (absent and null are missing), then the rule. Data: the latest non-null value of each field,
 * afresh from a restarting event's own fields.
 */
const refStep = <E extends Machine.Tagged, Data>(machine: Machine.Machine<E, Data>, state: Ref, event: E): Outcome => {
  const rule = machine.rules[event._tag as E["_tag"]]
  const record = event as unknown as Fields
  const missing = rule.requires.filter((field) => record[field] === undefined || record[field] === null)
  if (missing.length > 0) return { _tag: "Missing", fields: missing }
  if (!refHolds(rule.follows, state.tags)) return { _tag: "Refused" }
  const restarts = rule.restarting && state.count > 0
  return {
    _tag: "Accepted",
    state: {
      tags: refAccumulate(rule.accumulate, event._tag, state.tags),
      revision: restarts ? state.revision + 1 : state.revision,
      count: state.count + 1,
      data: rule.restarting ? valuesOf(event) : { ...state.data, ...valuesOf(event) }
    }
  }
}

/** The payload fields an event type's Schema declares. */
const fieldsOfCase = <E extends Machine.Tagged, Data>(machine: Machine.Machine<E, Data>, tag: E["_tag"]): Fields =>
  (machine.schema.cases[tag] as unknown as { readonly fields: Fields }).fields

const pick = (fields: Fields, names: ReadonlyArray<string>): Fields =>
  Object.fromEntries(Object.entries(fields).filter(([name]) => names.includes(name)))

const refAutomatic = <E extends Machine.Tagged, Data>(machine: Machine.Machine<E, Data>, tags: Tags) =>
  machine.eventTypes.find((tag) => machine.rules[tag].auto && refHolds(machine.rules[tag].follows, tags))

/** The state as the machine shows it: tags in declaration order. */
const shown = <E extends Machine.Tagged, Data>(machine: Machine.Machine<E, Data>, ref: Ref) => ({
  tags: machine.eventTypes.filter((tag) => ref.tags.has(tag)),
  revision: ref.revision,
  eventCount: ref.count,
  data: ref.data
})

const refFold = <E extends Machine.Tagged, Data>(machine: Machine.Machine<E, Data>, history: ReadonlyArray<E>) => {
  let state = start
  const trail: Array<Ref> = []
  for (const event of history) {
    const outcome = refStep(machine, state, event)
    if (outcome._tag !== "Accepted") return assert.fail(`the reference refuses ${event._tag} in a valid history`)
    state = outcome.state
    trail.push(state)
  }
  return { state, trail }
}

// ---------------------------------------------------------------------------------------------------------------
// The machines under test.
// ---------------------------------------------------------------------------------------------------------------

const { nothing, event, allOf, anyOf, butNot, predicate } = Rule
const { union, keep, alias, addition, difference, compose, custom } = Accumulate

/** The seed's task machine, as in the README. */
const TaskEvent = Schema.TaggedUnion({
  Created: { description: Schema.String },
  Assigned: { assignee: Schema.String },
  Scheduled: { deadline: Schema.String },
  Started: {},
  Reassigned: { assignee: Schema.String },
  Rescheduled: { deadline: Schema.String },
  Revised: { description: Schema.String },
  Canceled: {},
  Completed: {}
})
// prettier-ignore
const tasks = Machine.make(TaskEvent, {
  Created:     { follows: nothing() },
  Assigned:    { follows: allOf("Created", butNot("Assigned")),  accumulate: union(), requires: ["assignee"] },
  Scheduled:   { follows: allOf("Created", butNot("Scheduled")), accumulate: union(), requires: ["deadline"] },
  Started:     { follows: allOf("Assigned", "Scheduled") },
  Reassigned:  { follows: event("Started"), accumulate: keep(), requires: ["assignee"] },
  Rescheduled: { follows: event("Started"), accumulate: keep(), requires: ["deadline"] },
  Revised:     { follows: anyOf("Created", "Started"), accumulate: alias("Created"), restarting: true },
  Canceled:    { follows: event("Started") },
  Completed:   { follows: event("Started") }
})

/**
 * Every other piece of the grammar: a nullable required field, an automatic event that needs a field of the event
 * that triggers it, addition, difference and compose, a state emptied and started again, a restarting initial event,
 * a named predicate and a custom accumulation.
 */
const LabEvent = Schema.TaggedUnion({
  Opened: { owner: Schema.NullOr(Schema.String), note: Schema.optional(Schema.String) },
  Tagged: { label: Schema.optional(Schema.String) },
  Labeled: { label: Schema.optional(Schema.String) },
  Merged: {},
  Audited: { auditor: Schema.optional(Schema.NullOr(Schema.String)) },
  Cleared: {},
  Reset: { owner: Schema.optional(Schema.NullOr(Schema.String)) },
  Crowded: {}
})
type LabTag = (typeof LabEvent.Type)["_tag"]

const toggleCrowded = (tags: ReadonlySet<LabTag>): Array<LabTag> =>
  tags.has("Crowded") ? [...tags].filter((t) => t !== "Crowded") : [...tags, "Crowded"]

// prettier-ignore
const lab = Machine.make(LabEvent, {
  Opened:  { follows: nothing(), requires: ["owner"] },
  Tagged:  { follows: allOf("Opened", butNot(anyOf("Tagged", "Labeled"))), accumulate: union() },
  Labeled: { follows: event("Tagged"), auto: true, requires: ["label"],
             accumulate: compose(difference("Tagged"), union()) },
  Merged:  { follows: allOf("Labeled", butNot("Audited")), accumulate: addition("Audited") },
  Audited: { follows: event("Audited"), accumulate: difference("Audited", "Labeled"), requires: ["auditor"] },
  Cleared: { follows: allOf(anyOf("Opened", "Labeled"), butNot("Tagged")),
             accumulate: difference("Opened", "Labeled", "Crowded") },
  Reset:   { follows: allOf(anyOf(nothing(), "Opened"), butNot("Tagged")), restarting: true,
             accumulate: alias("Opened") },
  Crowded: { follows: predicate("two or more", (tags) => tags.size >= 2 && !tags.has("Tagged")),
             accumulate: custom("toggle Crowded", toggleCrowded) }
})

// ---------------------------------------------------------------------------------------------------------------
// The properties, for each machine.
// ---------------------------------------------------------------------------------------------------------------

const runs = { arbitrary: { runs: 500 } }

const properties = <E extends Machine.Tagged, Data>(name: string, machine: Machine.Machine<E, Data>) =>
  describe(`${name}: the machine agrees with the reference interpreter`, () => {
    it.prop(
      "every generated valid history folds to the reference's state",
      { history: Arbitraries.validHistory(machine, { maxLength: 16 }) },
      ({ history }) => {
        const folded = machine.fold(history)
        if (Result.isFailure(folded)) return assert.fail(folded.failure.message)
        assert.deepStrictEqual<unknown>(folded.success, shown(machine, refFold(machine, history).state))
        assert.deepStrictEqual(machine.replay(history), folded.success)
      },
      runs
    )

    it.prop(
      "automatic events follow wherever the reference allows one, and only there",
      { history: Arbitraries.validHistory(machine, { maxLength: 16 }) },
      ({ history }) => {
        const { trail } = refFold(machine, history)
        trail.forEach((state, i) => {
          const auto = refAutomatic(machine, state.tags)
          const next = history[i + 1]
          if (auto !== undefined) assert.strictEqual(next?._tag, auto, `after event ${i} comes ${auto}`)
          else if (next !== undefined) assert.isFalse(machine.rules[next._tag as E["_tag"]].auto)
        })
      },
      runs
    )

    it.prop(
      "any next event, with any payload, is accepted or refused as the reference says",
      {
        history: Arbitraries.validHistory(machine, { maxLength: 12 }),
        next: Arbitrary.schema(machine.schema as unknown as Schema.Codec<E>)
      },
      ({ history, next }) => {
        const state = Result.getOrThrow(machine.fold(history))
        const outcome = refStep(machine, refFold(machine, history).state, next)
        const result = machine.transition(state, next)
        switch (outcome._tag) {
          case "Accepted":
            assert.deepStrictEqual(
              Result.map(result, (s) => s.tags),
              Result.succeed(shown(machine, outcome.state).tags)
            )
            break
          case "Missing": {
            const error = Result.isFailure(result) ? result.failure : assert.fail("accepted a missing field")
            assert.instanceOf(error, Machine.MissingRequiredField)
            assert.deepStrictEqual(
              error instanceof Machine.MissingRequiredField ? [...error.fields] : [],
              outcome.fields
            )
            assert.include(error.message, `'${next._tag}'`)
            break
          }
          case "Refused": {
            const error = Result.isFailure(result) ? result.failure : assert.fail("accepted an illegal event")
            assert.instanceOf(error, Machine.IllegalTransition)
            const where = state.tags.length === 0 ? "may not be initial" : `may not follow [${state.tags.join(", ")}]`
            assert.include(error.message, `Event type '${next._tag}' ${where}`)
          }
        }
      },
      runs
    )

    it.prop(
      "decide adds the automatic events the reference makes from the proposed event's fields, or refuses as it does",
      {
        history: Arbitraries.validHistory(machine, { maxLength: 12 }),
        next: Arbitrary.schema(machine.schema as unknown as Schema.Codec<E>)
      },
      ({ history, next }) => {
        const decided = machine.decide([next], Result.getOrThrow(machine.fold(history)))
        // The reference: the proposed event, then while an automatic event type is allowed, that event made from the
        // proposed event's fields that its Schema declares, each checked like any other event.
        const expected: Array<E> = []
        let refusal: { readonly eventType: string; readonly outcome: Outcome } | undefined
        let state = refFold(machine, history).state
        let candidate: E | undefined = next
        while (candidate !== undefined) {
          const outcome = refStep(machine, state, candidate)
          if (outcome._tag !== "Accepted") {
            refusal = { eventType: candidate._tag, outcome }
            break
          }
          expected.push(candidate)
          state = outcome.state
          const auto = refAutomatic(machine, state.tags)
          const declared = auto === undefined ? [] : Object.keys(fieldsOfCase(machine, auto))
          candidate =
            auto === undefined ? undefined : ({ _tag: auto, ...pick(fieldsOf(next), declared) } as unknown as E)
        }
        if (refusal === undefined) {
          assert.deepStrictEqual<unknown>(decided, Result.succeed(expected))
        } else {
          const error = Result.isFailure(decided) ? decided.failure : assert.fail("accepted what the reference refuses")
          assert.strictEqual(error.eventType, refusal.eventType)
          if (refusal.outcome._tag === "Missing") {
            assert.instanceOf(error, Machine.MissingRequiredField)
            const fields = error instanceof Machine.MissingRequiredField ? [...error.fields] : []
            assert.deepStrictEqual(fields, refusal.outcome.fields)
          } else {
            assert.instanceOf(error, Machine.IllegalTransition)
          }
        }
      },
      runs
    )

    it.prop(
      "every generated invalid next event is refused, naming the event and the state",
      { invalid: Arbitraries.invalidNext(machine, { maxLength: 12 }) },
      ({ invalid }) => {
        const result = machine.transition(invalid.state, invalid.event)
        const error = Result.isFailure(result) ? result.failure : assert.fail("accepted an invalid next event")
        assert.instanceOf(error, Machine.IllegalTransition)
        const tags = invalid.state.tags
        assert.include(
          error.message,
          tags.length === 0
            ? `Event type '${invalid.event._tag}' may not be initial`
            : `Event type '${invalid.event._tag}' may not follow [${tags.join(", ")}]`
        )
        assert.isFalse(refHolds(machine.rules[invalid.event._tag as E["_tag"]].follows, new Set(tags)))
      },
      runs
    )
  })

properties("the seed's task machine", tasks)
properties("the lab machine", lab)
