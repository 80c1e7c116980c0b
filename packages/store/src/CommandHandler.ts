/**
 * Runs a decider against a stream: load the state (from a snapshot when there is one), `decide` (pure), append the
 * events with the exact version that was read, and on a stale version reload and decide again as the `RetryPolicy`
 * allows. Users never write the load-decide-append-retry loop, and never lose an update.
 *
 * @since 0.1.0
 */
import type { Decider } from "@evently/machine"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Deferred from "effect/Deferred"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Correlation from "./Correlation.ts"
import * as EventCodec from "./EventCodec.ts"
import * as EventStore from "./EventStore.ts"
import * as ExpectedVersion from "./ExpectedVersion.ts"
import * as Group from "./internal/commandHandler/group.ts"
import * as Idempotency from "./internal/commandHandler/idempotency.ts"
import * as Loading from "./internal/commandHandler/loading.ts"
import type { Known } from "./internal/commandHandler/loading.ts"
import * as Snapshotting from "./internal/commandHandler/snapshotting.ts"
import * as StateCache from "./internal/commandHandler/stateCache.ts"
import * as Turns from "./internal/commandHandler/turns.ts"
import * as Uuid from "./internal/uuid.ts"
import * as RetryPolicy from "./RetryPolicy.ts"
import * as SnapshotPolicy from "./SnapshotPolicy.ts"
import * as Snapshots from "./Snapshots.ts"
import * as StreamName from "./StreamName.ts"

/**
 * Every attempt found the stream changed since it was read, and the retry policy allows no more: nothing of this
 * command was written. `attempts` counts the reads-decides-appends made.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConcurrencyRetriesExhausted extends Schema.TaggedError<ConcurrencyRetriesExhausted>(
  "@evently/store/ConcurrencyRetriesExhausted"
)("ConcurrencyRetriesExhausted", {
  stream: Schema.String,
  attempts: Schema.Int,
  expected: Schema.Int,
  actual: Schema.Int
}) {
  override get message(): string {
    return (
      `Stream '${this.stream}' changed under the command on each of ${this.attempts} attempts ` +
      `(last: read at version ${this.expected}, found ${this.actual}); nothing was written`
    )
  }
}

/**
 * How to snapshot a handler's state: the Schema that encodes it as JSON, a `schemaVersion` to bump when that
 * encoding changes (snapshots of another version are ignored), and an optional policy (else the `SnapshotPolicy`
 * in context).
 *
 * @since 0.1.0
 * @category models
 */
export interface SnapshotOptions<State, Encoded> {
  readonly schema: Schema.Codec<State, Encoded>
  readonly schemaVersion?: number | undefined
  readonly policy?: SnapshotPolicy.Policy<State> | undefined
}

/**
 * What a handler is built from: a decider (a machine is one, and `Machine.decider(machine, decide)` makes one for
 * commands), the codec of its events, and optionally snapshots.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<Command, Event extends { readonly _tag: string }, State, Error, Encoded = unknown> {
  readonly decider: Decider.Decider<Command, Event, State, Error>
  readonly codec: EventCodec.EventCodec<Event>
  readonly snapshot?: SnapshotOptions<State, Encoded> | undefined
  /**
   * The states this handler last loaded or wrote, per stream (default: the 1,000 most recently used streams). A load
   * starts from the cached state and reads only the events appended since, so a busy stream costs its new events,
   * not its whole history. A cached state is never trusted blindly: the append still checks `Exact(version)`. It
   * requires `evolve` to return new states rather than mutate the one it is given. `false` turns it off.
   */
  readonly cache?: { readonly capacity?: number | undefined } | false | undefined
  /**
   * Whether commands for one stream handled by this handler take turns (others wait) instead of racing, as an
   * aggregate process per stream would. Default `true`: a hot stream written from one process then meets no conflicts
   * at all, and with the cache each command costs one read of the new events and one append. Commands that waited
   * for the turn are handled together when it comes (up to 64): one read and one append for all of them, each decided
   * in arrival order on the state the ones before it left, each with its own outcome (events, positions, version,
   * state, or its refusal) as if handled alone in that order; a command the store rejects fails alone, the others are
   * appended. A command in the caller's SQL transaction takes its turn alone, so its append carries nobody else's
   * events. Writers in other processes (or other handlers) still conflict and are retried. `false` lets the commands
   * race, each retried on a conflict as the retry policy allows.
   *
   * A command handled while a turn is held up its call chain (from inside another command, in the same fiber or in a
   * fiber that one forked) does not wait for a turn, so nesting cannot deadlock: on the outer command's own stream it
   * runs inside that turn, and the outer command's append then meets the new version and retries as on any conflict
   * (bounded by the retry policy like any other); on another stream it races. A command that waits for a fiber it did
   * not fork (a queue's worker, say) to handle a command on its own stream still waits forever: build such a handler
   * with `false`.
   */
  readonly oneAtATimePerStream?: boolean | undefined
  /**
   * How this handler retries a command that found its stream changed (each recurrence is one more attempt). See
   * {@link make} for how it ranks against a `RetryPolicy` in context: a policy provided around one call overrides
   * it; it overrides the `RetryPolicy` the handler was built under.
   */
  readonly retry?: Schedule.Schedule<unknown> | undefined
}

/**
 * Options of one command: `commandId` makes it idempotent on its stream (the same id again appends nothing and
 * returns the first result) and is the events' causation id; `headers` go into every event's metadata.
 *
 * @since 0.1.0
 * @category models
 */
export interface HandleOptions {
  readonly commandId?: string | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
}

/**
 * A stream's state as a handler loads it: its `version`, the folded `state`, the version of the snapshot it
 * started from (0 when none), the version its fold started from (a snapshot's or a cached state's; 0 when it read
 * the whole stream) and how many events it read after that.
 *
 * @since 0.1.0
 * @category models
 */
export interface Loaded<State> {
  readonly stream: StreamName.StreamName
  readonly version: number
  readonly state: State
  readonly snapshotVersion: number
  readonly startVersion: number
  readonly eventsRead: number
}

/**
 * The outcome of a command: the stream's `version` after it, the `events` it produced (empty when the decider had
 * nothing to do), their global `positions`, the `state` after them, the `attempts` made, and `duplicate` when the
 * command id had already been handled (then everything describes the first handling).
 *
 * @since 0.1.0
 * @category models
 */
export interface Handled<Event, State> {
  readonly stream: StreamName.StreamName
  readonly version: number
  readonly events: ReadonlyArray<Event>
  readonly positions: ReadonlyArray<bigint>
  readonly state: State
  readonly attempts: number
  readonly duplicate: boolean
}

/**
 * The errors of loading a stream. `InvalidReadOptions` can only come from a stored snapshot whose version is out of
 * the range a read accepts (a row damaged outside evently). `UnreadableEvent` is a stored event row that cannot be
 * read at all (its metadata or `recorded_at` damaged outside evently): it names the row's position.
 *
 * @since 0.1.0
 * @category errors
 */
export type LoadError =
  | StreamName.InvalidStreamName
  | EventStore.InvalidReadOptions
  | EventStore.StoreError
  | EventStore.UnreadableEvent
  | EventCodec.EventDecodeError

/**
 * The errors of handling a command besides the decider's own refusal.
 *
 * @since 0.1.0
 * @category errors
 */
export type HandleError = LoadError | ConcurrencyRetriesExhausted | EventStore.EventIdConflict | EventStore.InvalidEvent

/**
 * A command handler for one decider.
 *
 * @since 0.1.0
 * @category models
 */
export interface CommandHandler<Command, Event, State, Error> {
  /**
   * Handles a command on a stream: load, decide, append with the version read, retry on a stale version. A refusal
   * by the decider fails with its error and writes nothing.
   */
  readonly handle: (
    stream: string,
    command: Command,
    options?: HandleOptions
  ) => Effect.Effect<Handled<Event, State>, Error | HandleError>
  /** Loads a stream's current state (from the newest usable snapshot, then the events after it). */
  readonly load: (stream: string) => Effect.Effect<Loaded<State>, LoadError>
}

/**
 * The namespace of the event ids a handler derives from command ids (a random UUID, fixed forever).
 *
 * @since 0.1.0
 * @category constants
 */
export const eventIdNamespace = "6f1d8a52-2c4e-4f0b-9a67-3f5c1e0d7b21"

/**
 * The id of the `index`-th event a command produces on a stream: a name-based UUID (version 5) of the stream, the
 * command id and the index, so handling the same command again proposes the same ids and the store's idempotency
 * appends it once.
 *
 * @since 0.1.0
 * @category utils
 */
export const eventId = (stream: string, commandId: string, index: number): string =>
  Uuid.v5(eventIdNamespace, `${stream}\u0000${commandId}\u0000${index}`)

const isWrongExpectedVersion = (error: unknown): error is EventStore.WrongExpectedVersion =>
  error instanceof EventStore.WrongExpectedVersion

const isEventIdConflict = (error: unknown): error is EventStore.EventIdConflict =>
  error instanceof EventStore.EventIdConflict

const isHandleError = (error: unknown): boolean =>
  error instanceof StreamName.InvalidStreamName ||
  error instanceof EventStore.InvalidReadOptions ||
  error instanceof EventStore.StoreError ||
  error instanceof EventStore.UnreadableEvent ||
  error instanceof EventCodec.EventDecodeError ||
  error instanceof EventStore.EventIdConflict ||
  error instanceof EventStore.InvalidEvent

const commandTag = (command: unknown): string | undefined =>
  typeof command === "object" && command !== null && "_tag" in command && typeof command._tag === "string"
    ? command._tag
    : undefined

const outcomeOf = <A extends { readonly duplicate: boolean; readonly events: ReadonlyArray<unknown> }>(
  exit: Exit.Exit<A, unknown>
): string => {
  if (Exit.isSuccess(exit)) {
    return exit.value.duplicate ? "duplicate" : exit.value.events.length === 0 ? "unchanged" : "appended"
  }
  const error = Cause.findErrorOption(exit.cause)
  if (Option.isNone(error)) return "defect"
  if (error.value instanceof ConcurrencyRetriesExhausted) return "exhausted"
  return isHandleError(error.value) ? "failed" : "refused"
}

/**
 * Builds a command handler on the `EventStore` in context (and the `Snapshots` service when the options ask for
 * snapshots). `SnapshotPolicy` and `Correlation` are read on each command, so a layer or `Effect.provideService`
 * around a call changes them for that call.
 *
 * The retry schedule of a command is, from the strongest to the weakest:
 *
 * 1. a `RetryPolicy` provided around the call (one the handler was not built under);
 * 2. the handler's `retry` option;
 * 3. the `RetryPolicy` provided where the handler was built (its layer's context);
 * 4. `RetryPolicy.defaultSchedule`.
 *
 * A `RetryPolicy` provided to a whole program reaches both the build and the calls: as the same value, it counts as
 * the build's (3), so it does not override a handler's own `retry`.
 *
 * ```ts
 * import { Machine, Rule } from "@evently/machine"
 * import { CommandHandler, EventCodec, EventStore } from "@evently/store"
 * import * as Effect from "effect/Effect"
 * import * as Result from "effect/Result"
 * import * as Schema from "effect/Schema"
 *
 * const TaskEvent = Schema.TaggedUnion({ Created: { description: Schema.String }, Started: {} })
 * const TaskMachine = Machine.make(TaskEvent, {
 *   Created: { follows: Rule.nothing() },
 *   Started: { follows: Rule.event("Created") }
 * })
 * type Create = { readonly _tag: "Create"; readonly description: string }
 * const decide = (command: Create) =>
 *   Result.succeed([TaskEvent.cases.Created.make({ description: command.description })])
 *
 * export const program = Effect.gen(function* () {
 *   const tasks = yield* CommandHandler.make({
 *     decider: Machine.decider(TaskMachine, decide),
 *     codec: EventCodec.make(TaskEvent)
 *   })
 *   const { version, state } = yield* tasks.handle("task-1", { _tag: "Create", description: "Ship it" })
 *   return `task-1 is at version ${version}: ${state.tags.join(", ")}`
 * }).pipe(Effect.provide(EventStore.layerMemory))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export function make<Command, Event extends { readonly _tag: string }, State, Error, Encoded>(
  options: Options<Command, Event, State, Error, Encoded> & { readonly snapshot: SnapshotOptions<State, Encoded> }
): Effect.Effect<CommandHandler<Command, Event, State, Error>, never, EventStore.EventStore | Snapshots.Snapshots>
export function make<Command, Event extends { readonly _tag: string }, State, Error>(
  options: Options<Command, Event, State, Error>
): Effect.Effect<CommandHandler<Command, Event, State, Error>, never, EventStore.EventStore>
export function make<Command, Event extends { readonly _tag: string }, State, Error, Encoded>(
  options: Options<Command, Event, State, Error, Encoded>
): Effect.Effect<CommandHandler<Command, Event, State, Error>, never, EventStore.EventStore | Snapshots.Snapshots> {
  return Effect.gen(function* () {
    const store = yield* EventStore.EventStore
    const builtUnder = yield* RetryPolicy.provided
    const ownSchedule = options.retry ?? builtUnder ?? RetryPolicy.defaultSchedule
    const snapshotOptions = options.snapshot
    const snapshots = snapshotOptions === undefined ? undefined : yield* Snapshots.Snapshots
    const { decider, codec } = options
    const typed = EventCodec.typed(store, codec)
    // Most recently used last; `cache: false` keeps none.
    const capacity = options.cache === false ? 0 : Math.max(0, Math.floor(options.cache?.capacity ?? 1_000))
    const cache = StateCache.make<StreamName.StreamName, Known<State>>(capacity)
    const snapshotting =
      snapshots === undefined || snapshotOptions === undefined
        ? Snapshotting.none<State>()
        : Snapshotting.make(snapshots, snapshotOptions)
    const { loadStream, stateAt } = Loading.make(typed, decider, cache, snapshotting)
    const { findCommand, duplicateOf } = Idempotency.make(typed, stateAt)

    // Unless `oneAtATimePerStream: false`: a turn per stream, dropped when no command holds or awaits it.
    const turnsOn = options.oneAtATimePerStream !== false
    const turns = Turns.make<StreamName.StreamName>()

    const load = Effect.fn("CommandHandler.load")(function* (stream: string) {
      const name = yield* StreamName.parse(stream)
      yield* Effect.annotateCurrentSpan("stream", name)
      const { loaded } = yield* loadStream(name, Loading.lookFor(undefined))
      const { lastEventId: _known, ...result } = loaded
      return result satisfies Loaded<State>
    })

    /**
     * Appends the events a command decided with the version it loaded (nothing to append: the state as loaded). An
     * append that replays the same event ids, or meets them stored before a snapshot, is the command's first handling.
     */
    const appendDecided = Effect.fnUntraced(function* (
      name: StreamName.StreamName,
      loaded: Known<State>,
      events: ReadonlyArray<Event>,
      ids: {
        readonly commandId: string
        readonly givenId: string | undefined
        readonly metadata: EventStore.Metadata
        readonly attempts: number
      }
    ) {
      if (events.length === 0) {
        const handled: Handled<Event, State> = {
          stream: name,
          version: loaded.version,
          events: [],
          positions: [],
          state: loaded.state,
          attempts: ids.attempts,
          duplicate: false
        }
        return handled
      }
      const outcome = yield* typed
        .append(
          name,
          events.map((event, index) => ({ event, eventId: eventId(name, ids.commandId, index) })),
          { expected: ExpectedVersion.Exact(loaded.version), metadata: ids.metadata }
        )
        .pipe(
          Effect.map((result) => ({ _tag: "Appended", result }) as const),
          Effect.catchIf(isEventIdConflict, (conflict) =>
            // The same command id produced other events earlier (before the snapshot we loaded from).
            ids.givenId === undefined
              ? Effect.fail(conflict)
              : Effect.flatMap(findCommand(name, ids.givenId), (earlier) =>
                  earlier === undefined ? Effect.fail(conflict) : Effect.succeed({ _tag: "Earlier", earlier } as const)
                )
          )
        )
      if (outcome._tag === "Earlier") return yield* duplicateOf(name, outcome.earlier, ids.attempts)
      const appended = outcome.result
      if (appended.version !== loaded.version + events.length) {
        // The store replayed an append of the same ids that committed after our read: the first handling.
        return yield* duplicateOf(
          name,
          { version: appended.version, events: [...events], positions: [...appended.positions] },
          ids.attempts
        )
      }
      let state = loaded.state
      for (const event of events) state = decider.evolve(state, event)
      const saved = yield* snapshotting.save(name, loaded, appended.version, state)
      cache.set({
        ...loaded,
        version: appended.version,
        state,
        snapshotVersion: saved ? appended.version : loaded.snapshotVersion,
        eventsRead: 0,
        lastEventId: eventId(name, ids.commandId, events.length - 1)
      })
      const handled: Handled<Event, State> = {
        stream: name,
        version: appended.version,
        events,
        positions: appended.positions,
        state,
        attempts: ids.attempts,
        duplicate: false
      }
      return handled
    })

    type Pending = Group.Member<Command, Event, State, Error | HandleError>

    /** Handles one command by itself: load, decide, append, and on a conflict again as its retry policy allows. */
    const alone = (member: Pending): Effect.Effect<Handled<Event, State>, Error | HandleError> => {
      const { stream: name, command, givenId, commandId, metadata } = member
      let previous: Loading.Load<Event, State> | undefined
      const attempt = Effect.gen(function* () {
        const attempts = ++member.attempts
        const { loaded, found } = yield* loadStream(name, Loading.lookFor(givenId), previous)
        previous = { loaded, found }
        const earlier = givenId === undefined ? undefined : found.get(givenId)
        if (earlier !== undefined) return yield* duplicateOf(name, earlier, attempts)
        const decided = decider.decide(command, loaded.state)
        if (decided._tag === "Failure") {
          // A snapshot may hide an earlier handling of this command: look before refusing.
          if (givenId !== undefined && loaded.startVersion > 0) {
            const hidden = yield* findCommand(name, givenId)
            if (hidden !== undefined) return yield* duplicateOf(name, hidden, attempts)
          }
          return yield* Effect.fail(decided.failure)
        }
        return yield* appendDecided(name, loaded, decided.success, { commandId, givenId, metadata, attempts })
      })
      return Effect.retry(attempt, { schedule: member.schedule, while: isWrongExpectedVersion }).pipe(
        Effect.catchIf(isWrongExpectedVersion, (stale) =>
          Effect.fail(
            new ConcurrencyRetriesExhausted({
              stream: name,
              attempts: member.attempts,
              expected: stale.expected._tag === "Exact" ? stale.expected.version : -1,
              actual: stale.actual
            })
          )
        )
      )
    }

    const handleQueued = Group.make<Command, Event, State, Error, HandleError>({
      typed,
      decider,
      loadStream,
      snapshotting,
      cache,
      eventId,
      alone
    })

    const handle = Effect.fn("CommandHandler.handle")(function* (
      stream: string,
      command: Command,
      handleOptions?: HandleOptions
    ) {
      const name = yield* StreamName.parse(stream)
      const tag = commandTag(command)
      yield* Effect.annotateCurrentSpan({ stream: name, ...(tag === undefined ? {} : { "command.tag": tag }) })
      const givenId = handleOptions?.commandId
      const commandId = givenId ?? crypto.randomUUID()
      const correlationId = (yield* Correlation.Correlation) ?? commandId
      const aroundCall = yield* RetryPolicy.provided
      const schedule = aroundCall !== undefined && aroundCall !== builtUnder ? aroundCall : ownSchedule
      const metadata: EventStore.Metadata =
        handleOptions?.headers === undefined
          ? { correlationId, causationId: commandId }
          : { correlationId, causationId: commandId, headers: handleOptions.headers }
      const member: Pending = {
        stream: name,
        command,
        givenId,
        commandId,
        metadata,
        schedule,
        attempts: 0,
        done: Deferred.makeUnsafe(),
        span: Option.getOrUndefined(yield* Effect.option(Effect.currentSpan))
      }
      // Racing, or nested in a turn: at once. In the caller's SQL transaction: alone in the turn, as its append must
      // be in that transaction and nobody else's may be. Else queued, and handled with the others queued meanwhile.
      const run =
        !turnsOn || (yield* Turns.HoldsTurn)
          ? alone(member)
          : (yield* Group.inSqlTransaction)
            ? turns.inTurn(name, alone(member))
            : turns.queued<Handled<Event, State>, Error | HandleError, Pending>(name, member, (members) =>
                handleQueued(name, members)
              )
      return yield* run.pipe(
        Effect.onExit((exit) => Effect.annotateCurrentSpan({ attempts: member.attempts, outcome: outcomeOf(exit) }))
      )
    })

    const handler: CommandHandler<Command, Event, State, Error> = { handle, load }
    return handler
  })
}

/**
 * Provides the command handler `make(options)` builds as the service `tag`: for a handler class of your own
 * (`class Accounts extends Context.Service<Accounts, CommandHandler.CommandHandler<...>>()("app/Accounts") {}`).
 * A `RetryPolicy` provided to this layer is the handler's policy (below its own `retry` option, see {@link make}).
 *
 * @since 0.2.0
 * @category layers
 */
export function layer<Self, Command, Event extends { readonly _tag: string }, State, Error, Encoded>(
  tag: Context.Key<Self, CommandHandler<Command, Event, State, Error>>,
  options: Options<Command, Event, State, Error, Encoded> & { readonly snapshot: SnapshotOptions<State, Encoded> }
): Layer.Layer<Self, never, EventStore.EventStore | Snapshots.Snapshots>
export function layer<Self, Command, Event extends { readonly _tag: string }, State, Error>(
  tag: Context.Key<Self, CommandHandler<Command, Event, State, Error>>,
  options: Options<Command, Event, State, Error>
): Layer.Layer<Self, never, EventStore.EventStore>
export function layer<Self, Command, Event extends { readonly _tag: string }, State, Error, Encoded>(
  tag: Context.Key<Self, CommandHandler<Command, Event, State, Error>>,
  options: Options<Command, Event, State, Error, Encoded>
): Layer.Layer<Self, never, EventStore.EventStore | Snapshots.Snapshots> {
  return Layer.effect(tag, make(options))
}

/**
 * What a {@link Maker} needs besides the handler's options to run the handler elsewhere: a `name` for the kind of
 * stream (stable: a cluster names its entity and its message tables' rows after it), and the Schemas that carry its
 * commands, states and the decider's domain `errors` (their Schema classes) across a process boundary.
 *
 * @since 0.2.0
 * @category models
 */
export interface Wire<Command, State> {
  readonly name: string
  readonly commands: Schema.Codec<Command, unknown>
  readonly state: Schema.Codec<State, unknown>
  readonly errors: ReadonlyArray<Schema.Top>
}

/**
 * An error a handler made by another {@link Maker} adds when it could not get a command answered (the cluster's
 * `DeliveryFailed`): the command may or may not have been applied, and sending it again with the same `commandId`
 * applies it at most once.
 *
 * @since 0.2.0
 * @category errors
 */
export interface Undelivered {
  readonly _tag: string
  readonly message: string
  readonly stream: string
  readonly commandId: string
}

/**
 * Builds a command handler from its options and its {@link Wire}. Handlers made this way take no snapshot options.
 *
 * @since 0.2.0
 * @category models
 */
export type MakeWith = <Command, Event extends { readonly _tag: string }, State, Error>(
  options: Omit<Options<Command, Event, State, Error>, "snapshot">,
  wire: Wire<Command, State>
) => Effect.Effect<CommandHandler<Command, Event, State, Error | Undelivered>, never, EventStore.EventStore>

/**
 * The port through which code that builds a handler for others (`CommandApi` of `@evently/http`) lets the app choose
 * where its commands are handled. The default is {@link make}: in this process, on the `EventStore` in context.
 * `ClusterHandlers.layer` of `@evently/cluster` provides one that runs each handler as a cluster entity, so its
 * commands are handled by their stream's owner, wherever it runs.
 *
 * @since 0.2.0
 * @category services
 */
export const Maker = Context.Reference<MakeWith>("@evently/store/CommandHandler/Maker", {
  defaultValue: () => (options) => make(options)
})

/**
 * A service class for the handler of one aggregate kind, declared once and taken from the context wherever a
 * command is handled; its `layer` builds the handler on the `EventStore` in context (and `Snapshots` when the
 * options ask for snapshots), so a test provides it over `EventStore.layerMemory` and an app over Postgres.
 *
 * ```ts
 * import { CommandHandler, EventCodec, EventStore } from "@evently/store"
 * import * as Effect from "effect/Effect"
 * import * as Result from "effect/Result"
 * import * as Schema from "effect/Schema"
 *
 * const AccountEvent = Schema.TaggedUnion({ Opened: { owner: Schema.String } })
 * type AccountEvent = typeof AccountEvent.Type
 * type Open = { readonly _tag: "Open"; readonly owner: string }
 *
 * class Accounts extends CommandHandler.Service<Accounts>()("app/Accounts", {
 *   decider: {
 *     initial: { open: false },
 *     evolve: (_state: { readonly open: boolean }, _event: AccountEvent) => ({ open: true }),
 *     decide: (command: Open, state: { readonly open: boolean }) =>
 *       state.open ? Result.succeed([]) : Result.succeed([AccountEvent.cases.Opened.make({ owner: command.owner })])
 *   },
 *   codec: EventCodec.make(AccountEvent)
 * }) {}
 *
 * export const program = Effect.gen(function* () {
 *   const accounts = yield* Accounts
 *   return yield* accounts.handle("account-1", { _tag: "Open", owner: "ann" })
 * }).pipe(Effect.provide(Accounts.layer), Effect.provide(EventStore.layerMemory))
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const Service = <Self>(): ServiceMaker<Self> =>
  ((id: string, options: Options<unknown, { readonly _tag: string }, unknown, unknown, unknown>) => {
    const tag = Context.Service<Self, CommandHandler<unknown, { readonly _tag: string }, unknown, unknown>>()(id)
    return Object.assign(tag, { layer: Layer.effect(tag, make(options)), options })
  }) as ServiceMaker<Self>

/**
 * What `Service<Self>()` returns: declare the handler with its key and options.
 *
 * @since 0.2.0
 * @category models
 */
export interface ServiceMaker<Self> {
  <const Identifier extends string, Command, Event extends { readonly _tag: string }, State, Error, Encoded>(
    id: Identifier,
    options: Options<Command, Event, State, Error, Encoded> & { readonly snapshot: SnapshotOptions<State, Encoded> }
  ): ServiceClass<Self, Identifier, Command, Event, State, Error, EventStore.EventStore | Snapshots.Snapshots>
  <const Identifier extends string, Command, Event extends { readonly _tag: string }, State, Error>(
    id: Identifier,
    options: Options<Command, Event, State, Error>
  ): ServiceClass<Self, Identifier, Command, Event, State, Error, EventStore.EventStore>
}

/**
 * The class {@link Service} returns: a service key for one handler, with the `layer` that builds it (needing `R`)
 * and the `options` it was declared with.
 *
 * @since 0.2.0
 * @category models
 */
export interface ServiceClass<
  Self,
  Identifier extends string,
  Command,
  Event extends { readonly _tag: string },
  State,
  Error,
  R
> extends Context.ServiceClass<Self, Identifier, CommandHandler<Command, Event, State, Error>> {
  readonly layer: Layer.Layer<Self, never, R>
  readonly options: Options<Command, Event, State, Error, unknown>
}
