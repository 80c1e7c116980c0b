/**
 * Named, checkpointed, at-least-once consumers of the event log, as Effect Streams. Adapters:
 * `Subscriptions.layerMemory` here, `PgSubscriptions.layer` in `@evently/postgres`.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as EventStore from "./EventStore.ts"
import * as Faults from "./Faults.ts"
import * as StreamName from "./StreamName.ts"
import * as SubscriptionLifecycle from "./SubscriptionLifecycle.ts"

/**
 * A place in the log as the pair a subscription resumes from: the event's transaction id, then its position. Pairs
 * compare as pairs; a position alone is never a safe cursor (rows commit out of position order).
 *
 * @since 0.1.0
 * @category models
 */
export interface Checkpoint {
  readonly transactionId: bigint
  readonly position: bigint
}

/**
 * Where a subscription starts when it has no checkpoint yet: the `Beginning` of the log, its `End` (only events
 * that commit from now on; a few that committed just before may be delivered too, none after are missed), or
 * `After` a given event (by its position, and its transaction id when known).
 *
 * @since 0.1.0
 * @category models
 */
export type Start =
  | { readonly _tag: "Beginning" }
  | { readonly _tag: "End" }
  | { readonly _tag: "After"; readonly position: bigint; readonly transactionId?: bigint | undefined }

/**
 * Start from the first event of the log.
 *
 * @since 0.1.0
 * @category constructors
 */
export const Beginning: Start = { _tag: "Beginning" }

/**
 * Start with the events that commit from now on.
 *
 * @since 0.1.0
 * @category constructors
 */
export const End: Start = { _tag: "End" }

/**
 * Start after the event at `position`. In Postgres its transaction id is looked up when not given (pass
 * `event.transactionId` to skip the lookup); a position with no event behind it starts from the beginning, so nothing
 * is ever skipped by a mistyped position.
 *
 * @since 0.1.0
 * @category constructors
 */
export const After = (position: bigint, transactionId?: bigint): Start =>
  transactionId === undefined ? { _tag: "After", position } : { _tag: "After", position, transactionId }

/**
 * What a subscription reads and how: a filter (`categories`, `eventTypes`; both optional, both must match), the
 * `start` used when no checkpoint exists (default `Beginning`), `batchSize` events a page (default 100), the
 * `pollInterval` of the safety-net poll (default 1 second; the memory layer polls every 20 ms by default), `notify`
 * (default true: wake on NOTIFY; false: poll only), and consumer groups: `partitions` (default 1) splits the events
 * by a hash of the stream name, and `partition` chooses which of them this worker takes (default all, each under
 * its own lock).
 *
 * `ephemeral: true` keeps the checkpoint in this process only: no checkpoint row, no lock (any number of ephemeral
 * subscriptions of one name run side by side, each on its own cursor), parked events kept in memory, nothing left in
 * the database when it ends. For tails and for read models that live in memory and are rebuilt on each start; a
 * fresh ephemeral subscription begins at `start` again. `run` resumes it after a fault from what it committed.
 *
 * @since 0.1.0
 * @category models
 */
export interface SubscribeOptions {
  readonly ephemeral?: boolean | undefined
  readonly categories?: ReadonlyArray<string> | undefined
  readonly eventTypes?: ReadonlyArray<string> | undefined
  readonly start?: Start | undefined
  readonly batchSize?: number | undefined
  readonly pollInterval?: Duration.Input | undefined
  readonly notify?: boolean | undefined
  readonly partitions?: number | undefined
  readonly partition?: number | ReadonlyArray<number> | undefined
}

/**
 * What to do when the handler of `run` fails on an event: `Retry` it as the schedule allows (then `Stop`, or `Skip`
 * if `exhausted: "Skip"`), `Skip` it (park it with the error, move on) or `Stop` the subscription with a
 * {@link HandlerFailed}.
 *
 * @since 0.1.0
 * @category models
 */
export type ErrorPolicy =
  | {
      readonly _tag: "Retry"
      readonly schedule: Schedule.Schedule<unknown, unknown>
      readonly exhausted?: "Skip" | "Stop" | undefined
    }
  | { readonly _tag: "Skip" }
  | { readonly _tag: "Stop" }

/**
 * Retry a failing event as `schedule` allows, then stop (or skip, with `exhausted: "Skip"`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const Retry = (
  schedule: Schedule.Schedule<unknown, unknown>,
  options?: { readonly exhausted?: "Skip" | "Stop" | undefined }
): ErrorPolicy => ({ _tag: "Retry", schedule, exhausted: options?.exhausted })

/**
 * Park a failing event (with its error) and go on with the next one.
 *
 * @since 0.1.0
 * @category constructors
 */
export const Skip: ErrorPolicy = { _tag: "Skip" }

/**
 * Fail the subscription with {@link HandlerFailed} at the first failing event.
 *
 * @since 0.1.0
 * @category constructors
 */
export const Stop: ErrorPolicy = { _tag: "Stop" }

/**
 * Options of `run`: those of `subscribe`, the error policy (default `Stop`), `transactional` (default false):
 * when true, the handler's writes to the same database and the checkpoint commit in one transaction (without a
 * savepoint per event: a batch whose handler fails under `Skip` or `Retry` is rolled back and redone with one, see
 * `Batch.tryCommitWith`), and how the lifecycle is reported (`progressInterval`, `lagThreshold`: see
 * `SubscriptionLifecycle.Reporting`).
 *
 * @since 0.1.0
 * @category models
 */
export interface RunOptions extends SubscribeOptions, SubscriptionLifecycle.Reporting {
  readonly onError?: ErrorPolicy | undefined
  readonly transactional?: boolean | undefined
}

/**
 * The storage behind the subscription failed; `operation` says what was being done.
 *
 * @since 0.1.0
 * @category errors
 */
export class SubscriptionStorageError extends Schema.TaggedError<SubscriptionStorageError>(
  "@evently/store/SubscriptionStorageError"
)("SubscriptionStorageError", { operation: Schema.String, cause: Schema.Defect() }) {
  override get message(): string {
    return `Subscription ${this.operation} failed: ${Predicate.hasProperty(this.cause, "message") && typeof this.cause.message === "string" ? this.cause.message : describeError(this.cause)}`
  }
}

/**
 * A commit found the checkpoint moved by another worker (this one lost its lock): nothing was committed, and the
 * events will be delivered again to whichever worker holds the partition.
 *
 * @since 0.1.0
 * @category errors
 */
export class LeaseLost extends Schema.TaggedError<LeaseLost>("@evently/store/LeaseLost")("LeaseLost", {
  subscription: Schema.String,
  partition: Schema.Int
}) {
  override get message(): string {
    return `Subscription '${this.subscription}' partition ${this.partition}: the checkpoint was moved by another worker`
  }
}

/**
 * The stored checkpoint was written by another database cluster, or lies in the future of this one's transaction
 * ids (a restore from a dump): resuming from it would silently skip new events. Re-base it (see
 * `PgSubscriptions.rebase`) after deciding where the subscription should go on from.
 *
 * @since 0.1.0
 * @category errors
 */
export class CheckpointFromAnotherCluster extends Schema.TaggedError<CheckpointFromAnotherCluster>(
  "@evently/store/CheckpointFromAnotherCluster"
)("CheckpointFromAnotherCluster", {
  subscription: Schema.String,
  partition: Schema.Int,
  reason: Schema.String
}) {
  override get message(): string {
    return `Subscription '${this.subscription}' partition ${this.partition} refuses to resume: ${this.reason}. Re-base its checkpoint (PgSubscriptions.rebase) once you know where it should continue from.`
  }
}

/**
 * The handler failed on an event and the error policy said stop.
 *
 * @since 0.1.0
 * @category errors
 */
export class HandlerFailed extends Schema.TaggedError<HandlerFailed>("@evently/store/HandlerFailed")("HandlerFailed", {
  subscription: Schema.String,
  position: Schema.BigInt,
  eventId: Schema.String,
  cause: Schema.Defect()
}) {
  override get message(): string {
    return `Subscription '${this.subscription}' stopped: its handler failed on event ${this.eventId} at position ${this.position}`
  }
}

/**
 * `waitUntilCaughtUp` did not see the subscription catch up within its timeout.
 *
 * @since 0.1.0
 * @category errors
 */
export class CaughtUpTimeout extends Schema.TaggedError<CaughtUpTimeout>("@evently/store/CaughtUpTimeout")(
  "CaughtUpTimeout",
  { subscription: Schema.String }
) {
  override get message(): string {
    return `Subscription '${this.subscription}' did not catch up in time`
  }
}

/**
 * An operation named a subscription that has no checkpoint (it never ran, or its name is mistyped).
 *
 * @since 0.2.0
 * @category errors
 */
export class UnknownSubscription extends Schema.TaggedError<UnknownSubscription>("@evently/store/UnknownSubscription")(
  "UnknownSubscription",
  { subscription: Schema.String }
) {
  override get message(): string {
    return `Subscription '${this.subscription}' has no checkpoint: it never ran here, or the name is mistyped`
  }
}

/**
 * The errors of a subscription's machinery (not of its handler).
 *
 * @since 0.1.0
 * @category errors
 */
export type SubscriptionError =
  | SubscriptionStorageError
  | EventStore.UnreadableEvent
  | LeaseLost
  | CheckpointFromAnotherCluster
  | InvalidSubscription

/**
 * The subscription's options cannot work (a batch size or partition that is not a positive whole number, a partition
 * outside the group); refused before any I/O.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidSubscription extends Schema.TaggedError<InvalidSubscription>("@evently/store/InvalidSubscription")(
  "InvalidSubscription",
  { subscription: Schema.String, reason: Schema.String }
) {
  override get message(): string {
    return `Subscription '${this.subscription}' cannot run: ${this.reason}`
  }
}

const isWhole = (n: number, min: number) => Number.isSafeInteger(n) && n >= min

/**
 * The longest subscription name, in UTF-16 code units.
 *
 * @since 0.2.0
 * @category validation
 */
export const maxNameLength = 200

// C0 and C1 control characters, NUL included.
const hasControlCharacter = (text: string): boolean => {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) return true
  }
  return false
}
const maxBigint8 = 2n ** 63n - 1n

/**
 * What is wrong with a subscription name, or `undefined` when nothing is: it must be 1 to {@link maxNameLength}
 * characters of well-formed Unicode (no lone surrogate, which Postgres would store as U+FFFD so that two names share
 * one checkpoint) with no control character (NUL included).
 *
 * @since 0.2.0
 * @category validation
 */
export const nameProblem = (name: unknown): string | undefined => {
  const text = StreamName.textProblem(name)
  if (text !== undefined) return `the name: ${text}`
  const valid = name as string
  if (valid.length === 0) return "the name is empty"
  if (valid.length > maxNameLength) return `the name is longer than ${maxNameLength} characters`
  if (hasControlCharacter(valid)) return "the name contains a control character"
  return undefined
}

const listProblem = (
  label: string,
  list: unknown,
  itemProblem: (item: string) => string | undefined
): string | undefined => {
  if (list === undefined) return undefined
  if (!Array.isArray(list)) return `${label} must be an array of strings`
  for (const item of list as ReadonlyArray<unknown>) {
    if (typeof item !== "string") return `${label} must hold only strings, not ${typeof item}`
    const problem = itemProblem(item)
    if (problem !== undefined) return `${label} entry ${JSON.stringify(item)}: ${problem}`
  }
  return undefined
}

const eventTypeProblem = (type: string) =>
  type.length === 0 || type.length > 256 ? "an event type has 1 to 256 characters" : StreamName.textProblem(type)

const placeProblem = (label: string, value: unknown) =>
  typeof value !== "bigint" || value < 0n || value > maxBigint8
    ? `${label} must be a bigint from 0 to 2^63-1, not ${typeof value === "bigint" ? String(value) : typeof value}`
    : undefined

/**
 * What is wrong with a start, or `undefined` when nothing is (`After` takes a position, and optionally a transaction
 * id, each a bigint from 0 to 2^63-1).
 *
 * @since 0.2.0
 * @category validation
 */
export const startProblem = (start: unknown): string | undefined => {
  if (start === undefined) return undefined
  const tag = typeof start === "object" && start !== null && "_tag" in start ? start._tag : undefined
  if (tag === "Beginning" || tag === "End") return undefined
  if (tag !== "After") return "start must be Beginning, End or After(position)"
  const after = start as { readonly position?: unknown; readonly transactionId?: unknown }
  return (
    placeProblem("start After's position", after.position) ??
    (after.transactionId === undefined ? undefined : placeProblem("start After's transaction id", after.transactionId))
  )
}

/**
 * What is wrong with a subscription's options, or `undefined` when nothing is.
 *
 * @since 0.1.0
 * @category validation
 */
export const optionsProblem = (options: SubscribeOptions | undefined): string | undefined => {
  if (options === undefined) return undefined
  if (options.batchSize !== undefined && !isWhole(options.batchSize, 1)) {
    return `batchSize must be a whole number of at least 1, not ${options.batchSize}`
  }
  if (options.batchSize !== undefined && options.batchSize > 100_000) {
    return `batchSize must be at most 100000, not ${options.batchSize}`
  }
  const partitions = options.partitions ?? 1
  if (!isWhole(partitions, 1) || partitions > 1024) {
    return `partitions must be a whole number from 1 to 1024, not ${partitions}`
  }
  const chosen =
    options.partition === undefined
      ? []
      : typeof options.partition === "number"
        ? [options.partition]
        : options.partition
  const outside = chosen.find((p) => !isWhole(p, 0) || p >= partitions)
  if (outside !== undefined) return `partition ${outside} is not one of 0..${partitions - 1}`
  if (options.pollInterval !== undefined) {
    const poll = Duration.fromInput(options.pollInterval)
    if (Option.isNone(poll) || !Duration.isFinite(poll.value) || Duration.toMillis(poll.value) < 1) {
      return `pollInterval must be a finite duration of at least 1 millisecond, not ${String(options.pollInterval)}`
    }
  }
  return (
    listProblem("categories", options.categories, StreamName.categoryProblem) ??
    listProblem("eventTypes", options.eventTypes, eventTypeProblem) ??
    startProblem(options.start)
  )
}

/**
 * What is wrong with a subscription's name and options together, or `undefined` when nothing is.
 *
 * @since 0.2.0
 * @category validation
 */
export const problem = (name: unknown, options: SubscribeOptions | undefined): string | undefined =>
  nameProblem(name) ?? optionsProblem(options)

/**
 * Fails with {@link InvalidSubscription} when the name cannot be a subscription's: the check every operation on a
 * subscription makes before any I/O.
 *
 * @since 0.2.0
 * @category validation
 */
export const validName = (name: string): Effect.Effect<void, InvalidSubscription> => {
  const reason = nameProblem(name)
  return reason === undefined
    ? Effect.void
    : Effect.fail(new InvalidSubscription({ subscription: String(name), reason }))
}

/**
 * The subscription's name and options checked: a stream that fails with {@link InvalidSubscription} at once when they
 * cannot work, or the adapter's stream.
 *
 * @since 0.1.0
 * @category validation
 */
export const checked = (
  name: string,
  options: SubscribeOptions | undefined,
  stream: () => Stream.Stream<Batch, SubscriptionError>
): Stream.Stream<Batch, SubscriptionError> => {
  const reason = problem(name, options)
  return reason === undefined ? stream() : Stream.fail(new InvalidSubscription({ subscription: String(name), reason }))
}

/**
 * A page of events delivered to a consumer, in `(transactionId, position)` order, all of one partition. The
 * checkpoint does not move until `commit` (or `commitWith`) runs; committing a batch also acknowledges the earlier
 * batches of its partition. `commitWith(effect)` runs `effect` and the checkpoint update in one transaction (in
 * Postgres: the handler's `SqlClient` queries join it). `park` records an event as skipped, with its error.
 *
 * @since 0.1.0
 * @category models
 */
export interface Batch {
  readonly subscription: string
  readonly partition: number
  readonly events: ReadonlyArray<EventStore.RecordedEvent>
  readonly checkpoint: Checkpoint
  readonly commit: Effect.Effect<void, SubscriptionError>
  readonly commitWith: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | SubscriptionError, R>
  /**
   * Runs one handling inside `commitWith`'s transaction so that its failure undoes its own writes only (a savepoint
   * on Postgres): the transaction stays usable for a retry, for parking the event, and for the rest of the batch.
   */
  readonly isolate: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | SubscriptionError, R>
  /**
   * `commitWith`, except that a failure of `effect` itself (not of the commit) leaves the batch as it was: the
   * transaction rolls back and the batch can be committed again, where `commitWith` ends the session so that no later
   * batch commits over it. Only adapters whose `commitWith` is a database transaction have it (Postgres, PGlite):
   * `run` handles a transactional batch through it without a savepoint per event, and redoes the batch event by event
   * when a handler fails. A wrapper of batches that changes `commitWith` must change it too, or leave it out.
   *
   * @since 0.2.0
   */
  readonly tryCommitWith?:
    | (<A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | SubscriptionError, R>)
    | undefined
  readonly park: (event: EventStore.RecordedEvent, error: unknown) => Effect.Effect<void, SubscriptionError>
}

/**
 * One partition's state: its checkpoint, how far behind the head it is (matching events not yet handled and the
 * age in seconds of the oldest of them), and the backend pid of a transaction that holds the subscription back
 * (events committed after it cannot be read until it ends).
 *
 * @since 0.1.0
 * @category models
 */
export interface PartitionStatus {
  readonly partition: number
  readonly checkpoint: Checkpoint
  readonly lagEvents: number
  readonly lagSeconds: number
  readonly heldBackByPid: number | undefined
}

/**
 * A subscription's state, one entry per partition that has a checkpoint (none before it first ran).
 *
 * @since 0.1.0
 * @category models
 */
export interface Status {
  readonly subscription: string
  readonly partitions: ReadonlyArray<PartitionStatus>
}

/**
 * An event that a `Skip` policy parked, with the handler's error.
 *
 * @since 0.1.0
 * @category models
 */
export interface ParkedEvent {
  readonly subscription: string
  readonly partition: number
  readonly position: bigint
  readonly eventId: string
  readonly stream: string
  readonly type: string
  readonly error: string
}

/**
 * The record of an event parked by subscription `subscription`'s partition `partition`, with its error as text.
 *
 * @since 0.2.0
 * @category constructors
 */
export const parkedEvent = (
  subscription: string,
  partition: number,
  event: EventStore.RecordedEvent,
  error: string
): ParkedEvent => ({
  subscription,
  partition,
  position: event.position,
  eventId: event.eventId,
  stream: event.stream,
  type: event.type,
  error
})

/**
 * The timeout of a `waitUntilCaughtUp` (30 seconds when none is given), checked before any I/O: a value that is not
 * a duration of at least 0 fails with `InvalidSubscription` rather than as a defect. Adapters share it.
 *
 * @since 0.1.0
 * @category utils
 */
export const waitTimeout = (
  name: string,
  timeout: Duration.Input | undefined
): Effect.Effect<Duration.Duration, InvalidSubscription> => {
  // `Duration` reads NaN as zero; a wait of NaN is a mistake to name, not a wait of nothing.
  const duration =
    timeout === undefined
      ? Option.some(Duration.seconds(30))
      : Number.isNaN(timeout)
        ? Option.none()
        : Duration.fromInput(timeout)
  return Option.isSome(duration) && Duration.toMillis(duration.value) >= 0
    ? Effect.succeed(duration.value)
    : Effect.fail(
        new InvalidSubscription({
          subscription: name,
          reason: `timeout must be a duration of at least 0 milliseconds, not ${String(timeout)}`
        })
      )
}

/**
 * The subscriptions service.
 *
 * @since 0.1.0
 * @category services
 */
export class Subscriptions extends Context.Service<
  Subscriptions,
  {
    /**
     * The batches of a subscription, forever; the checkpoint moves only when a batch is committed.
     */
    readonly subscribe: (name: string, options?: SubscribeOptions) => Stream.Stream<Batch, SubscriptionError>
    /**
     * Handles every event with `handler`, committing after each batch, with the error policy; runs until
     * interrupted or stopped.
     */
    readonly run: <E, R>(
      name: string,
      handler: (event: EventStore.RecordedEvent) => Effect.Effect<void, E, R>,
      options?: RunOptions
    ) => Effect.Effect<never, SubscriptionError | HandlerFailed, R>
    /**
     * The subscription's checkpoints and lag.
     */
    readonly status: (name: string) => Effect.Effect<Status, SubscriptionError>
    /**
     * Waits until the subscription has handled every matching event committed before the call.
     */
    readonly waitUntilCaughtUp: (
      name: string,
      options?: { readonly timeout?: Duration.Input | undefined }
    ) => Effect.Effect<void, SubscriptionError | CaughtUpTimeout>
    /**
     * The events a `Skip` policy parked, oldest first.
     */
    readonly parked: (name: string) => Effect.Effect<ReadonlyArray<ParkedEvent>, SubscriptionError>
    /**
     * The lifecycle of the partitions that `run` runs in this process (of `name`, or of every subscription): first
     * the current phase of each, then every change, in order; it never ends. See `SubscriptionLifecycle`.
     */
    readonly lifecycle: (name?: string) => Stream.Stream<SubscriptionLifecycle.LifecycleEvent, InvalidSubscription>
    /**
     * The current phase of each partition that `run` runs in this process (of `name`, or of every subscription).
     */
    readonly phases: (
      name?: string
    ) => Effect.Effect<ReadonlyArray<SubscriptionLifecycle.LifecycleEvent>, InvalidSubscription>
  }
>()("@evently/store/Subscriptions") {}

/**
 * The service's `lifecycle` and `phases` over the lifecycles that its `run` reports to (see {@link makeRun}).
 *
 * @since 0.1.0
 * @category constructors
 */
export const lifecycleOf = (
  lifecycles: SubscriptionLifecycle.Lifecycles
): Pick<Subscriptions["Service"], "lifecycle" | "phases"> => ({
  lifecycle: (name) =>
    name === undefined ? lifecycles.events() : Stream.unwrap(Effect.as(validName(name), lifecycles.events(name))),
  phases: (name) =>
    name === undefined ? lifecycles.current() : Effect.andThen(validName(name), lifecycles.current(name))
})

/**
 * The partition (0 to `partitions - 1`) a stream belongs to in the memory layer: a 32-bit FNV-1a hash of the name.
 * (Postgres uses `hashtext`; the two agree on "one stream, one partition", not on the numbers.)
 *
 * @since 0.1.0
 * @category utils
 */
export const partitionOf = (stream: string, partitions: number): number => {
  if (partitions <= 1) return 0
  let hash = 0x811c9dc5
  for (let i = 0; i < stream.length; i++) {
    hash ^= stream.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return (hash >>> 0) % partitions
}

/**
 * The partitions a worker takes: `partition` when given, otherwise all of `0 .. partitions - 1`.
 *
 * @since 0.1.0
 * @category utils
 */
export const partitionsOf = (options: SubscribeOptions | undefined): ReadonlyArray<number> => {
  const count = Math.max(1, options?.partitions ?? 1)
  const chosen = options?.partition
  if (chosen === undefined) return Array.from({ length: count }, (_, i) => i)
  return typeof chosen === "number" ? [chosen] : chosen
}

/**
 * Whether an event passes a subscription's filter (categories and event types; an absent list matches all).
 *
 * @since 0.1.0
 * @category utils
 */
export const matchesFilter = (
  event: EventStore.RecordedEvent,
  options: Pick<SubscribeOptions, "categories" | "eventTypes"> | undefined
): boolean =>
  (options?.categories === undefined || options.categories.includes(event.category)) &&
  (options?.eventTypes === undefined || options.eventTypes.includes(event.type))

/**
 * An error as text for a parked event's `error`: never throws (a bigint field, a cycle) and never empty.
 *
 * @since 0.2.0
 * @category utils
 */
export const describeError = (error: unknown): string => {
  if (error instanceof Error) return `${error.name}: ${error.message}`
  if (typeof error === "string") return error.length > 0 ? error : "(empty string)"
  const json = safeStringify(error)
  return Option.isSome(json) && json.value !== undefined ? json.value : String(error)
}

const safeStringify = Option.liftThrowable((value: unknown): string | undefined =>
  JSON.stringify(value, (_, field: unknown) => (typeof field === "bigint" ? `${field}n` : field))
)

/**
 * How `run` recovers from a fault that a retry can fix (a lost connection, a failed commit, a serialization failure in
 * the handler's SQL): it starts the partition over from its last committed checkpoint after `initialDelay` (default
 * 100 ms), doubling the wait after each failure that made no progress, up to `maxDelay` (default 30 seconds), with
 * ±20% jitter, forever.
 *
 * @since 0.2.0
 * @category models
 */
export interface Recovery {
  readonly initialDelay?: Duration.Input | undefined
  readonly maxDelay?: Duration.Input | undefined
}

// The handler's fault that was not its own: its SQL lost the connection, hit a serialization failure or a timeout.
// The batch is not committed and the partition starts over from its checkpoint; the error policy is not consulted.
const handlerFault = (cause: unknown) => new SubscriptionStorageError({ operation: "handle", cause })

// A defect that is a transient SQL failure (a savepoint's rollback on a dead connection, inside `sql.withTransaction`)
// is a fault like any other; every other defect stays a defect.
const transientDefectsAsFaults = <A, E, R>(
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E | SubscriptionStorageError, R> =>
  Effect.catchCause(effect, (cause): Effect.Effect<never, E | SubscriptionStorageError> => {
    const die = cause.reasons.find((reason) => Cause.isDieReason(reason) && Faults.isTransient(reason.defect))
    return die !== undefined && Cause.isDieReason(die) ? Effect.fail(handlerFault(die.defect)) : Effect.failCause(cause)
  })

/**
 * Whether `run` starts a partition over after this error: a lost lease, or a storage fault that a retry may fix.
 * A checkpoint from another cluster, invalid options, a permanent storage fault and `HandlerFailed` end `run`.
 *
 * @since 0.2.0
 * @category utils
 */
export const isRecoverable = (error: unknown): boolean =>
  error instanceof LeaseLost || (error instanceof SubscriptionStorageError && !Faults.isPermanent(error.cause))

// The handler's transient faults bypass the policy: they are not the handler's to decide.
const fault = (error: unknown): Effect.Effect<never, SubscriptionError> =>
  Effect.fail(error instanceof SubscriptionStorageError || error instanceof LeaseLost ? error : handlerFault(error))

// A handler's SQL error that `isolate` reports as a failed "handle" is the handler's unless it is transient (a
// unique violation in its projection is for the policy to decide; a terminated connection is not).
const isFault = (error: unknown) =>
  error instanceof LeaseLost ||
  Faults.isTransient(error) ||
  (error instanceof SubscriptionStorageError && error.operation !== "handle")

const backoff = (recovery: Recovery | undefined, failures: number) =>
  Effect.map(Random.next, (random) => {
    const initial = Duration.toMillis(Duration.fromInputUnsafe(recovery?.initialDelay ?? "100 millis"))
    const max = Duration.toMillis(Duration.fromInputUnsafe(recovery?.maxDelay ?? "30 seconds"))
    const delay = Math.min(max, initial * 2 ** Math.min(failures, 30))
    return Duration.millis(Math.round(delay * (0.8 + 0.4 * random)))
  })

// The first handler failure in a batch handled without savepoints: its transaction rolls back, and the batch is
// handled again with a savepoint per event.
class Declined {
  readonly event: EventStore.RecordedEvent
  readonly error: unknown
  constructor(event: EventStore.RecordedEvent, error: unknown) {
    this.event = event
    this.error = error
  }
}
const isDeclined = (error: unknown): error is Declined => error instanceof Declined

/**
 * Builds `run` from a `subscribe`: each partition is a loop that handles each event of a batch under the error
 * policy, then commits the batch (inside one transaction with the handler when `transactional`). A fault that a retry
 * may fix (see {@link isRecoverable}; the handler's own transient SQL faults included, whatever the policy) ends that
 * partition's session without committing, and the partition starts over from its last committed checkpoint after a
 * backoff (see {@link Recovery}), logging each recovery. A transactional batch runs without a savepoint per event
 * when the adapter has `Batch.tryCommitWith`; under `Skip` or `Retry`, a handler's failure rolls it back and it is
 * redone with `isolate` around each event. Each batch is traced as a root span `Subscriptions.batch`. Adapters share
 * this loop. Each partition reports its
 * lifecycle to `lifecycles` (see `SubscriptionLifecycle`): the adapter's session sends its signals through
 * `SubscriptionLifecycle.SessionSignals`, provided here to the stream of `subscribe`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeRun =
  (
    subscribe: (name: string, options?: SubscribeOptions) => Stream.Stream<Batch, SubscriptionError>,
    recovery?: Recovery,
    pinStart?: (start: Start | undefined) => Effect.Effect<Start | undefined, SubscriptionError>,
    lifecycles?: SubscriptionLifecycle.Lifecycles
  ) =>
  <E, R>(
    name: string,
    handler: (event: EventStore.RecordedEvent) => Effect.Effect<void, E, R>,
    options?: RunOptions
  ): Effect.Effect<never, SubscriptionError | HandlerFailed, R> => {
    const policy = options?.onError ?? Stop
    const stop = (event: EventStore.RecordedEvent, cause: unknown): Effect.Effect<never, HandlerFailed> =>
      Effect.fail(new HandlerFailed({ subscription: name, position: event.position, eventId: event.eventId, cause }))
    const handling = (event: EventStore.RecordedEvent) => transientDefectsAsFaults(Effect.suspend(() => handler(event)))
    const handleOne = (
      batch: Batch,
      event: EventStore.RecordedEvent,
      attempt: Effect.Effect<void, unknown, R>
    ): Effect.Effect<void, SubscriptionError | HandlerFailed, R> => {
      switch (policy._tag) {
        case "Stop":
          return Effect.catch(attempt, (error): Effect.Effect<never, SubscriptionError | HandlerFailed> =>
            isFault(error) ? fault(error) : stop(event, error)
          )
        case "Skip":
          return Effect.catch(attempt, (error) =>
            isFault(error) ? fault(error) : batch.park(event, describeError(error))
          )
        case "Retry":
          return Effect.catch(
            Effect.retry(attempt, { schedule: policy.schedule, while: (error) => !isFault(error) }),
            (error): Effect.Effect<void, SubscriptionError | HandlerFailed> =>
              isFault(error)
                ? fault(error)
                : policy.exhausted === "Skip"
                  ? batch.park(event, describeError(error))
                  : stop(event, error)
          )
      }
    }
    // Each event of the batch under the policy, each attempt made by `attemptOf`.
    const handleAll = (batch: Batch, attemptOf: (event: EventStore.RecordedEvent) => Effect.Effect<void, unknown, R>) =>
      Effect.forEach(batch.events, (event) => handleOne(batch, event, attemptOf(event)), { discard: true })
    // Each event in a savepoint of its own, so that a failure undoes its own writes only. The event whose failure
    // made the batch start over begins with that failure (its handler is not run again for it), so that the policy
    // sees the attempts it would have seen.
    const isolated = (batch: Batch, declined?: Declined) =>
      handleAll(batch, (event) => {
        const attempt = batch.isolate(handling(event))
        if (declined?.event !== event) return attempt
        let replay = true
        return Effect.suspend(() => {
          if (!replay) return attempt
          replay = false
          return batch.isolate(Effect.fail(declined.error))
        })
      })
    // Every event without a savepoint; the first failure of a handler fails the whole batch with `Declined`.
    const optimistic = (batch: Batch) =>
      Effect.forEach(
        batch.events,
        (event) =>
          Effect.catch(handling(event), (error): Effect.Effect<never, SubscriptionError | Declined> =>
            isFault(error) ? fault(error) : Effect.fail(new Declined(event, error))
          ),
        { discard: true }
      )
    // `Stop` (the default): the first failure ends the batch, so one handler of failures around the whole batch
    // does what `handleAll` does with one per event, without an Effect per event for it. `current` is the event
    // whose handling failed: the events run one after another. `forEach` calls the handler inside the effect it
    // runs, so a handler that throws is a defect of the batch as it would be in a `suspend` (which cost ~70 ns an
    // event); nothing retries this effect, so the handler is called once per event either way.
    const handleAllOrStop = (batch: Batch): Effect.Effect<void, SubscriptionError | HandlerFailed, R> => {
      let current: EventStore.RecordedEvent | undefined
      const each = Effect.forEach(
        batch.events,
        (event) => {
          current = event
          return handler(event)
        },
        { discard: true }
      )
      return Effect.catch(
        transientDefectsAsFaults(each),
        (error): Effect.Effect<never, SubscriptionError | HandlerFailed> =>
          isFault(error) ? fault(error) : stop(current!, error)
      )
    }
    const handleBatch = (batch: Batch) => {
      if (options?.transactional !== true) {
        const handled = policy._tag === "Stop" ? handleAllOrStop(batch) : handleAll(batch, handling)
        return Effect.andThen(handled, batch.commit)
      }
      // A failure ends the run and the whole transaction rolls back: nothing to isolate.
      if (policy._tag === "Stop") return batch.commitWith(handleAllOrStop(batch))
      if (batch.tryCommitWith === undefined) return batch.commitWith(isolated(batch))
      // Optimistic: no savepoint unless a handler fails; then the transaction rolls back and the batch is redone.
      return batch
        .tryCommitWith(optimistic(batch))
        .pipe(Effect.catchIf(isDeclined, (declined) => batch.commitWith(isolated(batch, declined))))
    }
    // A root span per batch (the run's own span lasts as long as the run, and its children would never be seen):
    // what the batch holds, and how old its first event was when it was handed over.
    const traced = <A, E2, R2>(batch: Batch, effect: Effect.Effect<A, E2, R2>) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const first = batch.events[0]
        const last = batch.events[batch.events.length - 1]
        // Its call site is always this line: a stack trace per batch would say nothing and cost ~20 µs.
        return Effect.withSpan(effect, "Subscriptions.batch", {
          root: true,
          captureStackTrace: false,
          attributes: {
            subscription: name,
            partition: batch.partition,
            "batch.size": batch.events.length,
            "batch.first_position": first === undefined ? undefined : Number(first.position),
            "batch.last_position": last === undefined ? undefined : Number(last.position),
            "lag.seconds": first === undefined ? undefined : (now - DateTime.toEpochMillis(first.recordedAt)) / 1000
          }
        })
      })
    const runPartition = (
      runOptions: RunOptions | undefined,
      partition: number
    ): Effect.Effect<never, SubscriptionError | HandlerFailed, R> =>
      // Acquired uninterruptibly with its release, so a partition reported `Started` always reports `Stopped`.
      Effect.acquireUseRelease(
        lifecycles === undefined ? Effect.succeed(untracked) : lifecycles.track(name, partition, runOptions),
        (tracker) => runTracked(runOptions, partition, tracker),
        (tracker, exit) => tracker.stopped(Exit.isSuccess(exit) ? "ended" : stopReason(exit.cause))
      )
    const runTracked = (
      runOptions: RunOptions | undefined,
      partition: number,
      tracker: SubscriptionLifecycle.Tracker
    ): Effect.Effect<never, SubscriptionError | HandlerFailed, R> => {
      let progressed = false
      // An ephemeral subscription's cursor dies with its session: a restart resumes after the last committed batch.
      let resume: Start | undefined
      const session = Stream.suspend(() =>
        subscribe(name, { ...runOptions, partition, ...(resume === undefined ? {} : { start: resume }) })
      ).pipe(
        Stream.provideService(SubscriptionLifecycle.SessionSignals, tracker.signals),
        Stream.mapEffect((batch) =>
          Effect.tap(traced(batch, handleBatch(batch)), () =>
            Effect.andThen(
              Effect.sync(() => {
                progressed = true
                if (runOptions?.ephemeral === true) {
                  resume = After(batch.checkpoint.position, batch.checkpoint.transactionId)
                }
              }),
              tracker.handled(batch.events, batch.checkpoint)
            )
          )
        ),
        Stream.runDrain,
        Effect.andThen(Effect.never)
      )
      const loop = (failures: number): Effect.Effect<never, SubscriptionError | HandlerFailed, R> =>
        Effect.catch(session, (error) => {
          if (!isRecoverable(error)) return Effect.fail(error)
          const attempt = progressed ? 0 : failures
          progressed = false
          return Effect.flatMap(backoff(recovery, attempt), (delay) =>
            tracker
              .recovering(error.message, attempt + 1)
              .pipe(
                Effect.andThen(
                  Effect.logWarning(
                    `Subscription '${name}' partition ${partition}: ${error.message}; nothing after the last committed checkpoint is lost: starting over from it in ${Duration.format(delay)} (recovery ${attempt + 1})`
                  )
                ),
                Effect.andThen(Effect.sleep(delay)),
                Effect.andThen(Effect.suspend(() => loop(attempt + 1)))
              )
          )
        })
      return loop(0)
    }
    const reason = problem(name, options) ?? SubscriptionLifecycle.reportingProblem(options)
    if (reason !== undefined) return Effect.fail(new InvalidSubscription({ subscription: String(name), reason }))
    const partitions = (pinned: RunOptions | undefined) =>
      Effect.forEach(partitionsOf(pinned), (partition) => runPartition(pinned, partition), {
        concurrency: "unbounded",
        discard: true
      })
    // An ephemeral subscription has no stored checkpoint to resume from: its start (`End` above all) is resolved once
    // per run, so that a restart before its first commit does not skip what committed in between.
    const pinned =
      options?.ephemeral === true && pinStart !== undefined
        ? Effect.flatMap(pinStart(options.start), (start) =>
            partitions(start === undefined ? options : { ...options, start })
          )
        : partitions(options)
    return pinned.pipe(
      Effect.andThen(Effect.never),
      Effect.withSpan("Subscriptions.run", { attributes: { subscription: name } })
    )
  }

const keyOf = (name: string, partition: number) => `${partition}:${name}`

// Why a run ended, for its `Stopped` phase.
const stopReason = (cause: Cause.Cause<unknown>): string => {
  if (Cause.hasInterruptsOnly(cause)) return "interrupted"
  const error = Cause.squash(cause)
  return Predicate.hasProperty(error, "message") && typeof error.message === "string"
    ? error.message
    : describeError(error)
}

// The tracker of a `run` built without lifecycles: it reports nothing.
const untracked: SubscriptionLifecycle.Tracker = {
  signals: SubscriptionLifecycle.SessionSignals.defaultValue(),
  handled: () => Effect.void,
  recovering: () => Effect.void,
  stopped: () => Effect.void
}

// A row that cannot be read is reported as itself (it names the position; no retry fixes it); any other failure of
// the store is a storage fault.
const storage =
  (operation: string) =>
  (
    cause: EventStore.StoreError | EventStore.InvalidReadOptions | EventStore.UnreadableEvent
  ): SubscriptionStorageError | EventStore.UnreadableEvent =>
    cause._tag === "UnreadableEvent" ? cause : new SubscriptionStorageError({ operation, cause })

const toCheckpoint = (position: bigint): Checkpoint => ({ transactionId: 0n, position })

interface MemoryCheckpoint {
  position: bigint
  readonly partition: number
  readonly options: SubscribeOptions | undefined
}

/**
 * Subscriptions over an `EventStore` whose log commits in position order (the memory store): checkpoints, parked
 * events and one lock per partition live in the process. It reads with `readAll` by position and wakes by polling
 * (every 20 ms unless `pollInterval` says otherwise). `transactional` changes nothing here: a batch commits at once.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<Subscriptions, never, EventStore.EventStore> = Layer.effect(
  Subscriptions,
  Effect.gen(function* () {
    const store = yield* EventStore.EventStore
    const checkpoints = new Map<string, MemoryCheckpoint>()
    // The cursors of the ephemeral subscriptions running now, by name: each lives as long as its stream.
    const ephemerals = new Map<string, Set<MemoryCheckpoint>>()
    const leases = SubscriptionLifecycle.makeLocalLeases()
    const lifecycles = yield* SubscriptionLifecycle.make
    const parkedEvents: Array<ParkedEvent> = []
    const head = Stream.runLast(store.readAll()).pipe(
      Effect.map(Option.match({ onNone: () => 0n, onSome: (event) => event.position })),
      Effect.mapError(storage("read"))
    )

    const startPosition = Effect.fnUntraced(function* (start: Start | undefined) {
      switch (start?._tag ?? "Beginning") {
        case "Beginning":
          return 0n
        case "End":
          return yield* head
        default:
          return (start as Extract<Start, { _tag: "After" }>).position
      }
    })

    const durableCheckpoint = Effect.fnUntraced(function* (
      name: string,
      partition: number,
      options: SubscribeOptions | undefined
    ) {
      const key = keyOf(name, partition)
      yield* SubscriptionLifecycle.takeLocalLease(leases, key)
      yield* (yield* SubscriptionLifecycle.SessionSignals).leaseTaken
      let state = checkpoints.get(key)
      if (state === undefined) {
        state = { position: yield* startPosition(options?.start), partition, options }
        checkpoints.set(key, state)
      }
      return state
    })

    const ephemeralCheckpoint = Effect.fnUntraced(function* (
      name: string,
      partition: number,
      options: SubscribeOptions | undefined
    ) {
      const state: MemoryCheckpoint = { position: yield* startPosition(options?.start), partition, options }
      const running = ephemerals.get(name) ?? new Set()
      ephemerals.set(name, running.add(state))
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          running.delete(state)
          if (running.size === 0) ephemerals.delete(name)
        })
      )
      return state
    })

    const partitionStream = (name: string, partition: number, options: SubscribeOptions | undefined) =>
      Stream.unwrap(
        Effect.gen(function* () {
          const checkpoint =
            options?.ephemeral === true
              ? yield* ephemeralCheckpoint(name, partition, options)
              : yield* durableCheckpoint(name, partition, options)
          const partitions = Math.max(1, options?.partitions ?? 1)
          const batchSize = options?.batchSize ?? 100
          const poll = Duration.fromInputUnsafe(options?.pollInterval ?? "20 millis")
          const signals = yield* SubscriptionLifecycle.SessionSignals
          const matches = (event: EventStore.RecordedEvent) =>
            matchesFilter(event, options) && partitionOf(event.stream, partitions) === partition
          if (signals.active) {
            const behind = yield* Stream.runCollect(store.readAll({ after: checkpoint.position })).pipe(
              Effect.mapError(storage("read"))
            )
            yield* signals.positioned(toCheckpoint(checkpoint.position), behind.filter(matches).length)
          }
          // The checkpoint of the last batch delivered: where an empty read says the session caught up.
          let lastDelivered = checkpoint.position
          const commitTo = (position: bigint) =>
            Effect.sync(() => {
              if (position > checkpoint.position) checkpoint.position = position
            })
          const makeBatch = (events: ReadonlyArray<EventStore.RecordedEvent>, last: bigint): Batch => ({
            subscription: name,
            partition,
            events,
            checkpoint: toCheckpoint(last),
            commit: commitTo(last),
            commitWith: (effect) => Effect.tap(effect, () => commitTo(last)),
            isolate: (effect) => effect,
            park: (event, error) =>
              Effect.sync(() => {
                parkedEvents.push(parkedEvent(name, partition, event, describeError(error)))
              })
          })
          const next = Effect.fnUntraced(function* (cursor: bigint) {
            while (true) {
              const page = yield* Stream.runCollect(store.readAll({ after: cursor, limit: batchSize })).pipe(
                Effect.mapError(storage("read"))
              )
              if (page.length === 0) {
                yield* signals.readEmpty(toCheckpoint(lastDelivered))
                yield* Effect.sleep(poll)
                continue
              }
              const last = page[page.length - 1]!.position
              const events = page.filter(matches)
              if (events.length === 0) {
                cursor = last
                continue
              }
              lastDelivered = last
              return [[makeBatch(events, last)], Option.some(last)] as const
            }
          })
          return Stream.paginate(checkpoint.position, next)
        })
      )

    const subscribe = (name: string, options?: SubscribeOptions): Stream.Stream<Batch, SubscriptionError> =>
      checked(name, options, () =>
        Stream.mergeAll(
          partitionsOf(options).map((partition) => partitionStream(name, partition, options)),
          { concurrency: "unbounded" }
        )
      )

    const lagOf = Effect.fnUntraced(function* (state: MemoryCheckpoint, until: bigint | undefined) {
      const partitions = Math.max(1, state.options?.partitions ?? 1)
      return (yield* Stream.runCollect(store.readAll({ after: state.position })).pipe(
        Effect.mapError(storage("status"))
      )).filter(
        (event) =>
          (until === undefined || event.position <= until) &&
          matchesFilter(event, state.options) &&
          partitionOf(event.stream, partitions) === state.partition
      )
    })

    // A name's checkpoints, by partition: the durable ones, else the least advanced cursor of each partition among
    // the ephemeral subscriptions of that name running now.
    const checkpointsOf = (name: string): ReadonlyArray<MemoryCheckpoint> => {
      const durable = Array.from(checkpoints.entries())
        .filter(([key]) => key.slice(key.indexOf(":") + 1) === name)
        .map(([, state]) => state)
      const slowest = new Map<number, MemoryCheckpoint>()
      for (const state of durable.length > 0 ? [] : (ephemerals.get(name) ?? [])) {
        const known = slowest.get(state.partition)
        if (known === undefined || state.position < known.position) slowest.set(state.partition, state)
      }
      return [...durable, ...slowest.values()].sort((a, b) => a.partition - b.partition)
    }

    const status = Effect.fn("Subscriptions.status")(function* (name: string) {
      yield* validName(name)
      const now = yield* Clock.currentTimeMillis
      const partitions: Array<PartitionStatus> = []
      for (const state of checkpointsOf(name)) {
        const pending = yield* lagOf(state, undefined)
        partitions.push({
          partition: state.partition,
          checkpoint: toCheckpoint(state.position),
          lagEvents: pending.length,
          lagSeconds: pending.length === 0 ? 0 : (now - DateTime.toEpochMillis(pending[0]!.recordedAt)) / 1000,
          heldBackByPid: undefined
        })
      }
      return { subscription: name, partitions }
    })

    const waitUntilCaughtUp = Effect.fn("Subscriptions.waitUntilCaughtUp")(function* (
      name: string,
      options?: { readonly timeout?: Duration.Input | undefined }
    ) {
      yield* validName(name)
      const duration = yield* waitTimeout(name, options?.timeout)
      const wait = Effect.gen(function* () {
        const target = yield* head
        const caughtUp = Effect.gen(function* () {
          const states = checkpointsOf(name)
          if (states.length === 0) return false
          for (const state of states) {
            if ((yield* lagOf(state, target)).length > 0) return false
          }
          return true
        })
        yield* Effect.repeat(caughtUp, { until: (done: boolean) => done, schedule: Schedule.spaced("5 millis") })
      })
      return yield* Effect.timeoutOrElse(wait, {
        duration,
        orElse: () => Effect.fail(new CaughtUpTimeout({ subscription: name }))
      })
    })

    return Subscriptions.of({
      subscribe,
      run: makeRun(
        subscribe,
        undefined,
        (start) => (start?._tag === "End" ? Effect.map(head, (position) => After(position)) : Effect.succeed(start)),
        lifecycles
      ),
      ...lifecycleOf(lifecycles),
      status,
      waitUntilCaughtUp,
      parked: (name) =>
        Effect.andThen(
          validName(name),
          Effect.sync(() => parkedEvents.filter((event) => event.subscription === name))
        )
    })
  })
)
