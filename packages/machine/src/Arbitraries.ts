/**
 * Property-testing helpers: Arbitraries of valid histories (random walks through a machine's rules, with payloads
 * generated from the event Schemas and automatic follow-ups included) and of single invalid next events. They are
 * Effect's own `Arbitrary` values, usable with `it.prop` from `@effect/vitest` or `Arbitrary.checkEffect`.
 *
 * @since 0.1.0
 */
import * as Arbitrary from "effect/Arbitrary"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type * as Machine from "./Machine.ts"

/**
 * Options for history generation: histories have between 0 and `maxLength` chosen events (default 12; automatic
 * follow-ups come on top).
 *
 * @since 0.1.0
 * @category models
 */
export interface HistoryOptions {
  readonly maxLength?: number | undefined
}

/**
 * A valid history followed by one event the machine refuses in the state it leads to.
 *
 * @since 0.1.0
 * @category models
 */
export interface InvalidNext<E, Tag extends string, Data> {
  readonly history: ReadonlyArray<E>
  readonly state: Machine.State<Tag, Data>
  readonly event: E
}

/** What the rules look at: the control state alone (an emptied state allows what the empty history allows). */
const stateKey = <Tag extends string, Data>(state: Machine.State<Tag, Data>): string => state.tags.join(",")

const eventsOf = <E extends Machine.Tagged, Data>(machine: Machine.Machine<E, Data>) => {
  const byTag = new Map<string, Arbitrary.Arbitrary<E>>()
  return (tag: E["_tag"]): Arbitrary.Arbitrary<E> => {
    const cached = byTag.get(tag)
    if (cached !== undefined) return cached
    const requires = machine.rules[tag].requires
    const arbitrary = Arbitrary.schema(machine.schema.cases[tag] as Schema.Decoder<E, never>).pipe(
      Arbitrary.filter((event: E) =>
        requires.every((field) => {
          const value = (event as unknown as Readonly<Record<string, unknown>>)[field]
          return value !== undefined && value !== null
        })
      )
    )
    byTag.set(tag, arbitrary)
    return arbitrary
  }
}

const oneOf = <A extends string | number>(values: ReadonlyArray<A>): Arbitrary.Arbitrary<A> =>
  values.length === 1
    ? Arbitrary.Constant(values[0]!)
    : (Arbitrary.schema(Schema.Literals(values as ReadonlyArray<A>)) as Arbitrary.Arbitrary<A>)

/**
 * Generates an event of the given type, its payload from the event's Schema (with `requires` fields present and not
 * `null`).
 *
 * @since 0.1.0
 * @category generators
 */
export const event = <E extends Machine.Tagged, Data, const Tag extends E["_tag"]>(
  machine: Machine.Machine<E, Data>,
  eventType: Tag
): Arbitrary.Arbitrary<Extract<E, { readonly _tag: Tag }>> =>
  eventsOf(machine)(eventType) as Arbitrary.Arbitrary<Extract<E, { readonly _tag: Tag }>>

/**
 * Generates valid histories: random walks from the empty history, each step an allowed event type with a generated
 * payload, followed by any automatic follow-ups. A walk stops early in a state that accepts nothing; a generated event
 * whose automatic follow-up cannot be made from it (the fields the follow-up needs were not generated) is left out.
 *
 * @since 0.1.0
 * @category generators
 */
export const validHistory = <E extends Machine.Tagged, Data>(
  machine: Machine.Machine<E, Data>,
  options: HistoryOptions = {}
): Arbitrary.Arbitrary<ReadonlyArray<E>> => {
  type S = Machine.State<E["_tag"], Data>
  const maxLength = options.maxLength ?? 12
  const events = eventsOf(machine)
  const nextEvents = new Map<string, Arbitrary.Arbitrary<E> | undefined>()
  const nextIn = (state: S): Arbitrary.Arbitrary<E> | undefined => {
    const key = stateKey(state)
    if (nextEvents.has(key)) return nextEvents.get(key)
    const allowed = machine.allowed(state)
    const arbitrary = allowed.length === 0 ? undefined : Arbitrary.flatMap(oneOf(allowed), events)
    nextEvents.set(key, arbitrary)
    return arbitrary
  }
  const walk = (state: S, remaining: number): Arbitrary.Arbitrary<ReadonlyArray<E>> => {
    const next = remaining <= 0 ? undefined : nextIn(state)
    if (next === undefined) return Arbitrary.Constant([])
    return Arbitrary.flatMap(next, (chosen): Arbitrary.Arbitrary<ReadonlyArray<E>> => {
      const step = machine.step(state, chosen)
      // An event whose automatic follow-up cannot be made from it (its fields were not generated) is left out.
      if (Result.isFailure(step)) return walk(state, remaining - 1)
      return Arbitrary.map(walk(step.success.state, remaining - 1), (rest) => [...step.success.events, ...rest])
    })
  }
  const lengths = Array.from({ length: maxLength + 1 }, (_, i) => i)
  return Arbitrary.flatMap(oneOf(lengths), (length) => walk(machine.initial, length))
}

/**
 * Generates a valid history plus one event the machine refuses after it: its type is not allowed by its rule in the
 * state the history leads to. Histories after which every event type is allowed are skipped.
 *
 * @since 0.1.0
 * @category generators
 */
export const invalidNext = <E extends Machine.Tagged, Data>(
  machine: Machine.Machine<E, Data>,
  options: HistoryOptions = {}
): Arbitrary.Arbitrary<InvalidNext<E, E["_tag"], Data>> => {
  const events = eventsOf(machine)
  const refused = (history: ReadonlyArray<E>) => {
    const allowed = machine.allowed(machine.replay(history))
    return machine.eventTypes.filter((tag) => !allowed.includes(tag))
  }
  return validHistory(machine, options).pipe(
    Arbitrary.filter((history: ReadonlyArray<E>) => refused(history).length > 0),
    Arbitrary.flatMap((history) =>
      Arbitrary.map(Arbitrary.flatMap(oneOf(refused(history)), events), (refusedEvent) => ({
        history,
        state: machine.replay(history),
        event: refusedEvent
      }))
    )
  )
}
