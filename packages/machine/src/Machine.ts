/**
 * A state machine built from a Schema-tagged union of events plus one rule per tag. It is a pure reducer and
 * validator: `transition` refuses an event its rule does not allow, `evolve` replays stored history, `decide` checks
 * proposed events and adds automatic follow-ups. A machine is a `Decider` whose command is the list of proposed events.
 *
 * The state is the control state (the set of event types accumulated so far, in declaration order), the `revision`
 * (1 from the first event on, bumped by each later `restarting` event), the `eventCount` (how many events were
 * folded) and the domain data folded beside them.
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
 * An event that the machine's rules do not allow in the current state. The message is microcosm-eventsource's:
 * `Event type 'Started' may not follow [Created]`, or `Event type 'Assigned' may not be initial` when the control
 * state is empty (`initial`). `rule` is the event type's `follows` as written and `predicates` the names of the named
 * predicates in it; when there are any, the message ends with the rule, since the state alone no longer explains the
 * refusal.
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
    allowed: Schema.Array(Schema.String),
    rule: Schema.String,
    predicates: Schema.Array(Schema.String)
  }
) {
  /**
   * The human-readable refusal.
   *
   * @since 0.1.0
   */
  override get message(): string {
    const refusal = this.initial
      ? `Event type '${this.eventType}' may not be initial`
      : `Event type '${this.eventType}' may not follow [${this.state.join(", ")}]`
    return this.predicates.length > 0 ? `${refusal} (it follows ${this.rule})` : refusal
  }
}

/**
 * An event lacks fields that its type `requires`: absent, `undefined` or `null` (microcosm-eventsource's `None`).
 * Every missing field is named, and the fields are checked before the rule.
 *
 * @since 0.1.0
 * @category errors
 */
export class MissingRequiredField extends Schema.TaggedError<MissingRequiredField>(
  "@evently/machine/MissingRequiredField"
)("MissingRequiredField", { eventType: Schema.String, fields: Schema.NonEmptyArray(Schema.String) }) {
  /**
   * The human-readable refusal.
   *
   * @since 0.1.0
   */
  override get message(): string {
    const names = this.fields.map((field) => `'${field}'`).join(", ")
    return `Event type '${this.eventType}' requires ${this.fields.length === 1 ? "field" : "fields"} ${names}`
  }
}

/**
 * An automatic event could not be made: built from the fields of the event that triggered it, it does not decode
 * against its own Schema (a field its Schema needs, and `requires` does not name, is absent or of another type).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidAutomaticEvent extends Schema.TaggedError<InvalidAutomaticEvent>(
  "@evently/machine/InvalidAutomaticEvent"
)("InvalidAutomaticEvent", { eventType: Schema.String, after: Schema.String, reason: Schema.String }) {
  /**
   * The human-readable refusal.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return `Automatic event type '${this.eventType}' after '${this.after}' does not decode: ${this.reason}`
  }
}

/**
 * A machine rejected when it was built: in the named state, reached by an event, an automatic transition competes
 * with another transition, or automatic transitions never stop; or from the named state a custom accumulation leads
 * to an event type the machine does not have.
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
export type MachineError = IllegalTransition | MissingRequiredField | InvalidAutomaticEvent

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
 * revision; `requires` names payload fields that must be present and not `null`; `auto` makes the event follow
 * automatically when its rule holds after another event (its payload is taken from the fields of the event that
 * triggered it, as far as its Schema declares them).
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
 * A machine state: the control state (`tags`, in declaration order), the `revision` (1 from the first event on,
 * bumped by each later restarting event: microcosm-eventsource's `version`, renamed so that it is not taken for the
 * store's stream version), how many events were folded (`eventCount`, 0 for the empty history; it equals the stream
 * version when the whole stream was folded) and the domain `data`.
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
  /** The event types allowed in a state, in declaration order. */
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

/** The payload fields of an event that have a value: not `undefined` and, unless `keepNull`, not `null`. */
const payload = (event: Tagged, keepNull: boolean): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const [field, value] of Object.entries(event)) {
    if (field !== "_tag" && value !== undefined && (keepNull || value !== null)) out[field] = value
  }
  return out
}

/**
 * The default data fold: the latest non-null value of each payload field wins (microcosm-eventsource's `last.of`,
 * which coalesces nulls away), within the revision. A restarting event starts the new revision's data afresh from its
 * own payload (so a revised task has no assignee until one is assigned again).
 *
 * @since 0.1.0
 * @category data
 */
export const latestFields = <E extends Tagged>(
  restarting: (tag: E["_tag"]) => boolean
): DataFold<E, LatestFields<E>> => ({
  initial: {},
  evolve: (data, event) =>
    (restarting(event._tag) ? payload(event, false) : { ...data, ...payload(event, false) }) as LatestFields<E>
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

const definitionOfMachine = <E extends Tagged, Data>(machine: Machine<E, Data>): Core.Definition => ({
  tags: machine.eventTypes,
  specs: machine.rules as unknown as Readonly<Record<string, Core.Spec>>
})

const recordOf = (event: Tagged) => event as unknown as Readonly<Record<string, unknown>>

const missing = (spec: Core.Spec, event: Tagged): MissingRequiredField | undefined => {
  const [first, ...rest] = Core.missingFields(spec, recordOf(event))
  return first === undefined ? undefined : new MissingRequiredField({ eventType: event._tag, fields: [first, ...rest] })
}

const build = <E extends Tagged, Data>(
  schema: EventSchema<E>,
  def: Core.Definition,
  data: DataFold<E, Data>
): Machine<E, Data> => {
  type S = State<E["_tag"], Data>
  const initial: S = { tags: [], revision: 1, eventCount: 0, data: data.initial }
  const allowedIn = (state: S) => Core.allowed(def, new Set(state.tags)) as Array<E["_tag"]>
  const hasAutos = def.tags.some((tag) => def.specs[tag]!.auto)
  const evolveFrom = (state: S, control: Core.Control, event: E, spec: Core.Spec): S => ({
    tags: Core.ordered(def, Core.next(def, control, event._tag)) as Array<E["_tag"]>,
    // microcosm: the first event is version 1 whatever it is; only a later restarting event starts a new one.
    revision: spec.restarting && state.eventCount > 0 ? state.revision + 1 : state.revision,
    eventCount: state.eventCount + 1,
    data: data.evolve(state.data, event)
  })
  const evolve = (state: S, event: E): S => evolveFrom(state, new Set(state.tags), event, def.specs[event._tag]!)
  const transition = (state: S, event: E): Result.Result<S, MachineError> => {
    const spec = def.specs[event._tag]
    // As microcosm does: the required fields first, then the rule.
    const lacking = spec === undefined ? undefined : missing(spec, event)
    if (lacking !== undefined) return Result.fail(lacking)
    const control: Core.Control = new Set(state.tags)
    if (spec === undefined || !Rule.holds(spec.follows, control)) {
      return Result.fail(
        new IllegalTransition({
          eventType: event._tag,
          state: [...state.tags],
          revision: state.revision,
          initial: control.size === 0,
          allowed: Core.allowed(def, control),
          rule: spec === undefined ? "" : Rule.format(spec.follows),
          predicates: spec === undefined ? [] : Rule.predicateNames(spec.follows)
        })
      )
    }
    return Result.succeed(evolveFrom(state, control, event, spec))
  }
  /** The automatic event of type `tag` made from the fields of `origin`, as far as its Schema declares them. */
  const automaticEvent = (tag: E["_tag"], origin: E): Result.Result<E, MachineError> => {
    const candidate = { ...payload(origin, true), _tag: tag }
    const lacking = missing(def.specs[tag]!, candidate)
    if (lacking !== undefined) return Result.fail(lacking)
    return Result.mapError(
      Schema.decodeUnknownResult(schema.cases[tag] as Schema.Decoder<E, never>)(candidate),
      (error) => new InvalidAutomaticEvent({ eventType: tag, after: origin._tag, reason: error.message })
    )
  }
  const step = (state: S, event: E): Result.Result<Step<E, E["_tag"], Data>, MachineError> =>
    Result.flatMap(transition(state, event), (after) => {
      const events: Array<E> = [event]
      if (!hasAutos) return Result.succeed({ state: after, events })
      let current = after
      // A state the chain has seen again would repeat forever; `make` rules that out for every reachable state.
      const seen = new Set<string>()
      for (;;) {
        const control: Core.Control = new Set(current.tags)
        const tag = Core.automatic(def, control) as E["_tag"] | undefined
        const at = Core.key(def, control)
        if (tag === undefined || seen.has(at)) break
        seen.add(at)
        const made = automaticEvent(tag, event)
        if (Result.isFailure(made)) return Result.fail(made.failure)
        events.push(made.success)
        current = evolve(current, made.success)
      }
      return Result.succeed({ state: current, events })
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
 * Builds a machine, or fails with `InvalidMachine` naming a state, reached by an event, where an automatic transition
 * competes with another one or automatic transitions never stop (or where a custom accumulation leads to an unknown
 * event type). Every event type of the union needs a rule; rules may only name event types of the union, and
 * `requires` only fields of the event's Schema (both checked by the compiler).
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
  const explored = Core.explore(def)
  const problem = Core.checkTags(def, explored) ?? Core.checkAutomatic(def, explored)
  if (problem !== undefined) return Result.fail(new InvalidMachine(problem))
  const data = latestFields<E>((tag) => def.specs[tag]!.restarting)
  return Result.succeed(build(schema, def, data))
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
): Machine<E, Data2> => build(machine.schema, definitionOfMachine(machine), data)

/**
 * Decodes an unknown value as one of the machine's events, checking the fields its type `requires` (a `null` one is
 * missing; every missing one is named).
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = <E extends Tagged, Data>(
  machine: Machine<E, Data>,
  input: unknown
): Result.Result<E, Schema.SchemaError | MissingRequiredField> =>
  Result.flatMap(Schema.decodeUnknownResult(machine.schema)(input), (event) => {
    const lacking = missing(machine.rules[event._tag as E["_tag"]] as Core.Spec, event)
    return lacking === undefined ? Result.succeed(event) : Result.fail(lacking)
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
 * Whether an event type is initial in a machine: its rule holds on an empty control state.
 *
 * @since 0.1.0
 * @category introspection
 */
export const isInitial = <E extends Tagged, Data>(machine: Machine<E, Data>, eventType: E["_tag"]): boolean =>
  Rule.isInitial(machine.rules[eventType].follows)

/**
 * The initial event types of a machine, in declaration order.
 *
 * @since 0.1.0
 * @category introspection
 */
export const initialEventTypes = <E extends Tagged, Data>(machine: Machine<E, Data>): ReadonlyArray<E["_tag"]> =>
  machine.eventTypes.filter((tag) => isInitial(machine, tag))

/**
 * Whether an event type follows automatically when its rule holds after another event.
 *
 * @since 0.1.0
 * @category introspection
 */
export const isAutomatic = <E extends Tagged, Data>(machine: Machine<E, Data>, eventType: E["_tag"]): boolean =>
  machine.rules[eventType].auto

/**
 * The automatic event types of a machine, in declaration order.
 *
 * @since 0.1.0
 * @category introspection
 */
export const automaticEventTypes = <E extends Tagged, Data>(machine: Machine<E, Data>): ReadonlyArray<E["_tag"]> =>
  machine.eventTypes.filter((tag) => isAutomatic(machine, tag))

/**
 * Whether an event type restarts: after the first event, it starts a new revision.
 *
 * @since 0.1.0
 * @category introspection
 */
export const isRestarting = <E extends Tagged, Data>(machine: Machine<E, Data>, eventType: E["_tag"]): boolean =>
  machine.rules[eventType].restarting

/**
 * The fields an event type `requires`, as declared.
 *
 * @since 0.1.0
 * @category introspection
 */
export const requiredFields = <E extends Tagged, Data, const Tag extends E["_tag"]>(
  machine: Machine<E, Data>,
  eventType: Tag
): ReadonlyArray<FieldsOf<E, Tag>> => machine.rules[eventType].requires

/**
 * The event types allowed after an arbitrary control state (any set of the machine's event types, reachable or not),
 * in declaration order.
 *
 * @since 0.1.0
 * @category introspection
 */
export const allowedAfter = <E extends Tagged, Data>(
  machine: Machine<E, Data>,
  tags: Iterable<E["_tag"]>
): ReadonlyArray<E["_tag"]> => Core.allowed(definitionOfMachine(machine), new Set(tags)) as Array<E["_tag"]>
