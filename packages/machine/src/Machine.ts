/**
 * A state machine built from a Schema-tagged union of events plus one rule per tag. It is a pure reducer and
 * validator: `transition` refuses an event its rule does not allow, `evolve` replays stored history, `decide` checks
 * proposed events and adds automatic follow-ups. A machine is a `Decider` whose command is the list of proposed events.
 *
 * The state is the control state (the set of event types accumulated so far, in declaration order), the `revision`
 * (starting at 1, bumped by each `restarting` event), the `eventCount` (how many events were folded) and the domain
 * data folded beside them.
 *
 * @since 0.1.0
 */
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Accumulate from "./Accumulate.ts"
import type * as Decider from "./Decider.ts"
import * as Core from "./internal/core.ts"
import * as Rule from "./Rule.ts"

/**
 * An event that the machine's rules do not allow in the current state. The message reads
 * `Event type 'Started' may not follow [Created]`, or `Event type 'Assigned' may not be initial` on an empty history.
 *
 * @since 0.1.0
 * @category errors
 */
export class IllegalTransition extends Schema.TaggedError<IllegalTransition>("@evently/machine/IllegalTransition")(
  "IllegalTransition",
  {
    eventType: Schema.String,
    state: Schema.Array(Schema.String),
    revision: Schema.Number,
    initial: Schema.Boolean,
    allowed: Schema.Array(Schema.String)
  }
) {
  /**
   * The human-readable refusal.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return this.initial
      ? `Event type '${this.eventType}' may not be initial`
      : `Event type '${this.eventType}' may not follow [${this.state.join(", ")}]`
  }
}

/**
 * An event lacks a field that its type `requires`.
 *
 * @since 0.1.0
 * @category errors
 */
export class MissingRequiredField extends Schema.TaggedError<MissingRequiredField>(
  "@evently/machine/MissingRequiredField"
)("MissingRequiredField", { eventType: Schema.String, field: Schema.String }) {
  /**
   * The human-readable refusal.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return `Event type '${this.eventType}' requires field '${this.field}'`
  }
}

/**
 * A machine rejected when it was built: in the named reachable state an automatic transition competes with another
 * transition (or automatic transitions never stop).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidMachine extends Schema.TaggedError<InvalidMachine>("@evently/machine/InvalidMachine")(
  "InvalidMachine",
  { state: Schema.String, reason: Schema.String }
) {
  /**
   * The human-readable rejection.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return `Invalid machine in state ${this.state}: ${this.reason}`
  }
}

/**
 * Everything `transition` and `decide` can refuse.
 *
 * @since 0.1.0
 * @category errors
 */
export type MachineError = IllegalTransition | MissingRequiredField

/**
 * The shape every event has: a string `_tag`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Tagged {
  readonly _tag: string
}

/**
 * What a machine is built from: a Schema of a tagged union with its `cases` (`Schema.TaggedUnion`, or
 * `Schema.toTaggedUnion("_tag")` over a `Schema.Union` of `TaggedClass`es).
 *
 * @since 0.1.0
 * @category models
 */
export interface EventSchema<E extends Tagged> extends Schema.Decoder<E, never> {
  readonly cases: { readonly [K in E["_tag"]]: Schema.Decoder<Extract<E, { readonly _tag: K }>, never> }
}

/**
 * The payload field names of the event of type `Tag`.
 *
 * @since 0.1.0
 * @category type-level
 */
export type FieldsOf<E extends Tagged, Tag extends string> = Exclude<keyof Extract<E, { readonly _tag: Tag }>, "_tag"> &
  string

/**
 * The rule of one event type. `follows` is required; `accumulate` defaults to `current()`; `restarting` starts a new
 * revision; `requires` names payload fields that must be present; `auto` makes the event follow automatically (its
 * payload must decode from `{ _tag }` alone).
 *
 * @since 0.1.0
 * @category models
 */
export interface TagRule<Tag extends string, Field extends string> {
  readonly follows: Rule.Rule<Tag>
  readonly accumulate?: Accumulate.Accumulate<Tag> | undefined
  readonly restarting?: boolean | undefined
  readonly requires?: ReadonlyArray<Field> | undefined
  readonly auto?: boolean | undefined
}

/**
 * A rule with its defaults filled in, as a built machine exposes it.
 *
 * @since 0.1.0
 * @category models
 */
export interface NormalizedRule<Tag extends string, Field extends string> {
  readonly follows: Rule.Rule<Tag>
  readonly accumulate: Accumulate.Accumulate<Tag>
  readonly restarting: boolean
  readonly requires: ReadonlyArray<Field>
  readonly auto: boolean
}

/**
 * One rule per event type of the union, checked against it: tags and required fields must exist.
 *
 * @since 0.1.0
 * @category models
 */
export type Rules<E extends Tagged> = { readonly [K in E["_tag"]]: TagRule<E["_tag"], FieldsOf<E, K>> }

type AllKeys<E> = E extends unknown ? Exclude<keyof E, "_tag"> : never

/**
 * The default domain data: every payload field of every event type, optional, holding the latest value set.
 *
 * @since 0.1.0
 * @category models
 */
export type LatestFields<E> = {
  readonly [K in AllKeys<E>]?: E extends unknown ? (K extends keyof E ? E[K] : never) : never
}

/**
 * A machine state: the control state (`tags`, in declaration order), the `revision` (from 1, bumped by restarting
 * events: microcosm-eventsource's `version`, renamed so that it is not taken for the store's stream version), how many
 * events were folded (`eventCount`, 0 for the empty history; it equals the stream version when the whole stream was
 * folded) and the domain `data`.
 *
 * @since 0.1.0
 * @category models
 */
export interface State<Tag extends string, Data> {
  readonly tags: ReadonlyArray<Tag>
  readonly revision: number
  readonly eventCount: number
  readonly data: Data
}

/**
 * One accepted event and what followed it automatically, with the resulting state.
 *
 * @since 0.1.0
 * @category models
 */
export interface Step<E, Tag extends string, Data> {
  readonly state: State<Tag, Data>
  readonly events: ReadonlyArray<E>
}

/**
 * How the domain data folds: from `initial`, each event through `evolve`.
 *
 * @since 0.1.0
 * @category models
 */
export interface DataFold<E, Data> {
  readonly initial: Data
  readonly evolve: (data: Data, event: E) => Data
}

/**
 * A built machine. It is a `Decider` whose command is the list of events proposed for the current state.
 *
 * @since 0.1.0
 * @category models
 */
export interface Machine<E extends Tagged, Data = LatestFields<E>> extends Decider.Decider<
  ReadonlyArray<E>,
  E,
  State<E["_tag"], Data>,
  MachineError
> {
  /** The event Schema the machine was built from. */
  readonly schema: EventSchema<E>
  /** Every event type, in declaration order. */
  readonly eventTypes: ReadonlyArray<E["_tag"]>
  /** The rule of every event type, with defaults filled in. */
  readonly rules: { readonly [K in E["_tag"]]: NormalizedRule<E["_tag"], FieldsOf<E, K>> }
  /** How the domain data folds. */
  readonly data: DataFold<E, Data>
  /** The empty history: no tags, revision 1, no events. */
  readonly initial: State<E["_tag"], Data>
  /** Applies one event if its rule allows it (no automatic follow-ups). */
  readonly transition: (state: State<E["_tag"], Data>, event: E) => Result.Result<State<E["_tag"], Data>, MachineError>
  /** Applies one event if allowed, then every automatic follow-up. */
  readonly step: (state: State<E["_tag"], Data>, event: E) => Result.Result<Step<E, E["_tag"], Data>, MachineError>
  /** Applies one event without checking its rule: total, for replaying stored history. */
  readonly evolve: (state: State<E["_tag"], Data>, event: E) => State<E["_tag"], Data>
  /** Folds a history from the initial state with `transition`, refusing the first illegal event. */
  readonly fold: (events: Iterable<E>) => Result.Result<State<E["_tag"], Data>, MachineError>
  /** Folds a stored history from the initial state with `evolve`. */
  readonly replay: (events: Iterable<E>) => State<E["_tag"], Data>
  /** Checks proposed events in order and returns them with their automatic follow-ups. */
  readonly decide: (
    events: ReadonlyArray<E>,
    state: State<E["_tag"], Data>
  ) => Result.Result<ReadonlyArray<E>, MachineError>
  /** The event types allowed in a state. */
  readonly allowed: (state: State<E["_tag"], Data>) => ReadonlyArray<E["_tag"]>
}

/**
 * The event union of a machine.
 *
 * @since 0.1.0
 * @category type-level
 */
export type EventOf<M> = M extends Machine<infer E, infer _Data> ? E : never

/**
 * The state type of a machine.
 *
 * @since 0.1.0
 * @category type-level
 */
export type StateOf<M> = M extends Machine<infer E, infer Data> ? State<E["_tag"], Data> : never

/**
 * The event types of a machine.
 *
 * @since 0.1.0
 * @category type-level
 */
export type EventTypeOf<M> = EventOf<M>["_tag"]

const payload = (event: Tagged): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const [field, value] of Object.entries(event)) {
    if (field !== "_tag" && value !== undefined) out[field] = value
  }
  return out
}

/**
 * The default data fold: the latest value of each payload field wins, within the revision. A restarting event starts
 * the new revision's data afresh from its own payload (so a revised task has no assignee until one is assigned again).
 *
 * @since 0.1.0
 * @category data
 */
export const latestFields = <E extends Tagged>(
  restarting: (tag: E["_tag"]) => boolean
): DataFold<E, LatestFields<E>> => ({
  initial: {},
  evolve: (data, event) => (restarting(event._tag) ? payload(event) : { ...data, ...payload(event) }) as LatestFields<E>
})

const definitionOf = (eventTypes: ReadonlyArray<string>, rules: Readonly<Record<string, TagRule<string, string>>>) => {
  const specs: Record<string, Core.Spec> = {}
  for (const tag of eventTypes) {
    const rule = rules[tag]!
    specs[tag] = {
      follows: rule.follows,
      accumulate: rule.accumulate ?? Accumulate.current(),
      restarting: rule.restarting ?? false,
      requires: rule.requires ?? [],
      auto: rule.auto ?? false
    }
  }
  return { tags: eventTypes, specs } satisfies Core.Definition
}

const controlOf = <Tag extends string, Data>(state: State<Tag, Data>): Core.Control => ({
  tags: new Set(state.tags),
  empty: state.eventCount === 0
})

const build = <E extends Tagged, Data>(
  schema: EventSchema<E>,
  def: Core.Definition,
  data: DataFold<E, Data>,
  autoEvents: Readonly<Record<string, E>>
): Machine<E, Data> => {
  type S = State<E["_tag"], Data>
  const initial: S = { tags: [], revision: 1, eventCount: 0, data: data.initial }
  const allowedIn = (state: S) => Core.allowed(def, controlOf(state)) as Array<E["_tag"]>
  const hasAutos = Object.keys(autoEvents).length > 0
  const evolveFrom = (state: S, control: Core.Control, event: E, spec: Core.Spec): S => ({
    tags: Core.ordered(def, Core.next(def, control, event._tag).tags) as Array<E["_tag"]>,
    revision: spec.restarting ? state.revision + 1 : state.revision,
    eventCount: state.eventCount + 1,
    data: data.evolve(state.data, event)
  })
  const evolve = (state: S, event: E): S => evolveFrom(state, controlOf(state), event, def.specs[event._tag]!)
  const transition = (state: S, event: E): Result.Result<S, MachineError> => {
    const spec = def.specs[event._tag]
    const control = controlOf(state)
    // Only the event's own rule decides; the list of allowed types is computed for the error alone.
    if (spec === undefined || !Rule.holds(spec.follows, control.tags, control.empty)) {
      return Result.fail(
        new IllegalTransition({
          eventType: event._tag,
          state: [...state.tags],
          revision: state.revision,
          initial: state.eventCount === 0,
          allowed: Core.allowed(def, control) as Array<E["_tag"]>
        })
      )
    }
    const record = event as unknown as Readonly<Record<string, unknown>>
    for (const field of spec.requires) {
      if (record[field] === undefined) {
        return Result.fail(new MissingRequiredField({ eventType: event._tag, field }))
      }
    }
    return Result.succeed(evolveFrom(state, control, event, spec))
  }
  const step = (state: S, event: E): Result.Result<Step<E, E["_tag"], Data>, MachineError> =>
    Result.map(transition(state, event), (after) => {
      const events: Array<E> = [event]
      let current = after
      for (;;) {
        if (!hasAutos) break
        const candidates = allowedIn(current)
        const auto = candidates.length === 1 ? autoEvents[candidates[0]!] : undefined
        if (auto === undefined) break
        events.push(auto)
        current = evolve(current, auto)
      }
      return { state: current, events }
    })
  const fold = (events: Iterable<E>): Result.Result<S, MachineError> => {
    let state = initial
    for (const event of events) {
      const result = transition(state, event)
      if (Result.isFailure(result)) return result
      state = result.success
    }
    return Result.succeed(state)
  }
  const replay = (events: Iterable<E>): S => {
    let state = initial
    for (const event of events) state = evolve(state, event)
    return state
  }
  const decide = (events: ReadonlyArray<E>, state: S): Result.Result<ReadonlyArray<E>, MachineError> => {
    const out: Array<E> = []
    let current = state
    for (const event of events) {
      const result = step(current, event)
      if (Result.isFailure(result)) return Result.fail(result.failure)
      out.push(...result.success.events)
      current = result.success.state
    }
    return Result.succeed(out)
  }
  const rules: Record<string, Core.Spec> = { ...def.specs }
  return {
    schema,
    eventTypes: def.tags as ReadonlyArray<E["_tag"]>,
    rules: rules as Machine<E, Data>["rules"],
    data,
    initial,
    transition,
    step,
    evolve,
    fold,
    replay,
    decide,
    allowed: allowedIn
  }
}

/**
 * Builds a machine, or fails with `InvalidMachine` naming the state where an automatic transition is ambiguous.
 * Every event type of the union needs a rule; rules may only name event types of the union, and `requires` only
 * fields of the event's Schema (both checked by the compiler).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeResult = <E extends Tagged>(
  schema: EventSchema<E>,
  rules: Rules<E>
): Result.Result<Machine<E>, InvalidMachine> => {
  const eventTypes = Object.keys(schema.cases) as Array<E["_tag"]>
  const def = definitionOf(eventTypes, rules as unknown as Readonly<Record<string, TagRule<string, string>>>)
  const problem = Core.checkAutomatic(def, Core.explore(def))
  if (problem !== undefined) return Result.fail(new InvalidMachine(problem))
  const autoEvents: Record<string, E> = {}
  for (const tag of eventTypes) {
    if (!def.specs[tag]!.auto) continue
    const decoded = Schema.decodeUnknownResult(schema.cases[tag] as Schema.Decoder<E, never>)({ _tag: tag })
    if (Result.isFailure(decoded)) {
      return Result.fail(
        new InvalidMachine({
          state: "*",
          reason: `automatic event type '${tag}' must decode from { _tag } alone: ${decoded.failure.message}`
        })
      )
    }
    autoEvents[tag] = decoded.success
  }
  const data = latestFields<E>((tag) => def.specs[tag]!.restarting)
  return Result.succeed(build(schema, def, data, autoEvents))
}

/**
 * Builds a machine, throwing `InvalidMachine` when an automatic transition is ambiguous in some reachable state. Use
 * it for machines defined at module level, where a broken definition should stop the program at once.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E extends Tagged>(schema: EventSchema<E>, rules: Rules<E>): Machine<E> =>
  Result.getOrThrow(makeResult(schema, rules))

/**
 * Replaces how the domain data folds (the default keeps the latest value of each field). `evolve` sees every event,
 * restarting ones included; it decides itself what a new revision keeps.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withData = <E extends Tagged, Data, Data2>(
  machine: Machine<E, Data>,
  data: DataFold<E, Data2>
): Machine<E, Data2> => {
  const def: Core.Definition = {
    tags: machine.eventTypes,
    specs: machine.rules as unknown as Readonly<Record<string, Core.Spec>>
  }
  const autoEvents: Record<string, E> = {}
  for (const tag of machine.eventTypes) {
    if (def.specs[tag]!.auto) {
      autoEvents[tag] = Result.getOrThrow(
        Schema.decodeUnknownResult(machine.schema.cases[tag as E["_tag"]] as Schema.Decoder<E, never>)({ _tag: tag })
      )
    }
  }
  return build(machine.schema, def, data, autoEvents)
}

/**
 * Decodes an unknown value as one of the machine's events, checking the fields its type `requires`.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = <E extends Tagged, Data>(
  machine: Machine<E, Data>,
  input: unknown
): Result.Result<E, Schema.SchemaError | MissingRequiredField> =>
  Result.flatMap(Schema.decodeUnknownResult(machine.schema)(input), (event) => {
    const record = event as unknown as Readonly<Record<string, unknown>>
    const missing = machine.rules[event._tag as E["_tag"]].requires.find((field) => record[field] === undefined)
    return missing === undefined
      ? Result.succeed(event)
      : Result.fail(new MissingRequiredField({ eventType: event._tag, field: missing }))
  })

/**
 * Turns a machine into a decider for commands: the user's `decide` proposes events for a command, and the machine
 * checks them against its rules and adds the automatic follow-ups, so an illegal event from a buggy `decide` is
 * refused with `IllegalTransition`. The state is the machine state.
 *
 * @since 0.1.0
 * @category combinators
 */
export const decider = <E extends Tagged, Data, Command, Error>(
  machine: Machine<E, Data>,
  decide: (command: Command, state: State<E["_tag"], Data>) => Result.Result<ReadonlyArray<E>, Error>
): Decider.Decider<Command, E, State<E["_tag"], Data>, Error | MachineError> => ({
  initial: machine.initial,
  evolve: machine.evolve,
  decide: (command, state) =>
    Result.flatMap(decide(command, state), (events): Result.Result<ReadonlyArray<E>, Error | MachineError> =>
      machine.decide(events, state)
    )
})

/**
 * Whether an event type is initial in a machine: its rule holds on an empty history.
 *
 * @since 0.1.0
 * @category introspection
 */
export const isInitial = <E extends Tagged, Data>(machine: Machine<E, Data>, eventType: E["_tag"]): boolean =>
  machine.allowed(machine.initial).includes(eventType)
