/**
 * The event store port: streams of immutable JSON events with optimistic concurrency, read by stream, category or
 * the whole log. Adapters: `EventStore.layerMemory` here, `PgEventStore.layer` in `@evently/postgres`.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as DateTime from "effect/DateTime"
import type * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type * as Stream from "effect/Stream"
import * as ExpectedVersion from "./ExpectedVersion.ts"
import type * as StreamName from "./StreamName.ts"

/**
 * Metadata kept with each event: correlation and causation ids plus free-form user headers.
 *
 * @since 0.1.0
 * @category models
 */
export const Metadata = Schema.Struct({
  correlationId: Schema.optionalKey(Schema.String),
  causationId: Schema.optionalKey(Schema.String),
  headers: Schema.optionalKey(Schema.Record(Schema.String, Schema.String))
})

/**
 * @since 0.1.0
 * @category models
 */
export type Metadata = typeof Metadata.Type

/**
 * An event to append. `data` must be JSON (objects, arrays, strings without NUL, finite numbers, booleans, null).
 * `eventId` is a UUID; when omitted the store generates one. `schemaVersion` defaults to 1. `metadata` is merged
 * over the append's own metadata.
 *
 * @since 0.1.0
 * @category models
 */
export interface NewEvent {
  readonly type: string
  readonly data: unknown
  readonly eventId?: string | undefined
  readonly schemaVersion?: number | undefined
  readonly metadata?: Metadata | undefined
}

/**
 * An event as stored: its place in the global log (`position`, `transactionId`), in its stream (`streamVersion`,
 * 1-based and contiguous) and its content.
 *
 * @since 0.1.0
 * @category models
 */
export interface RecordedEvent {
  readonly position: bigint
  readonly transactionId: bigint
  readonly stream: StreamName.StreamName
  readonly category: string
  readonly streamVersion: number
  readonly eventId: string
  readonly type: string
  readonly schemaVersion: number
  readonly data: unknown
  readonly metadata: Metadata
  readonly recordedAt: DateTime.Utc
}

/**
 * Options of an append: the expected version (default `Any`) and metadata for every event of the call.
 *
 * @since 0.1.0
 * @category models
 */
export interface AppendOptions {
  readonly expected?: ExpectedVersion.ExpectedVersion | undefined
  readonly metadata?: Metadata | undefined
}

/**
 * The outcome of an append: the stream's new version and the global positions of the appended events, in order.
 * Appending the same event ids again returns the first append's result.
 *
 * @since 0.1.0
 * @category models
 */
export interface AppendResult {
  readonly stream: StreamName.StreamName
  readonly version: number
  readonly positions: ReadonlyArray<bigint>
}

/**
 * How to read one stream: `forward` (default) from version `from` (default 1), or `backward` from version `from`
 * (default the last), at most `limit` events. `batchSize` is how many rows each page fetches.
 *
 * @since 0.1.0
 * @category models
 */
export interface ReadStreamOptions {
  readonly direction?: "forward" | "backward" | undefined
  readonly from?: number | undefined
  readonly limit?: number | undefined
  readonly batchSize?: number | undefined
}

/**
 * How to read the log or some categories of it, in position order: the events after position `after` (default 0,
 * the beginning), at most `limit` of them, `batchSize` rows a page.
 *
 * @since 0.1.0
 * @category models
 */
export interface ReadLogOptions {
  readonly after?: bigint | undefined
  readonly limit?: number | undefined
  readonly batchSize?: number | undefined
}

/**
 * The stream's version did not meet the append's expectation; nothing was written.
 *
 * @since 0.1.0
 * @category errors
 */
export class WrongExpectedVersion extends Schema.TaggedError<WrongExpectedVersion>(
  "@evently/store/WrongExpectedVersion"
)("WrongExpectedVersion", {
  stream: Schema.String,
  expected: ExpectedVersion.ExpectedVersion,
  actual: Schema.Int
}) {
  override get message(): string {
    return `Stream '${this.stream}' expected ${ExpectedVersion.format(this.expected)} but is at version ${this.actual}`
  }
}

/**
 * An event id is already stored with other content (another stream, type, data or place in the batch); nothing
 * was written. Appending exactly the same batch again is not an error: it returns the first result.
 *
 * @since 0.1.0
 * @category errors
 */
export class EventIdConflict extends Schema.TaggedError<EventIdConflict>("@evently/store/EventIdConflict")(
  "EventIdConflict",
  { stream: Schema.String, eventId: Schema.String, reason: Schema.String }
) {
  override get message(): string {
    return `Event id ${this.eventId} on stream '${this.stream}' is already stored: ${this.reason}`
  }
}

/**
 * An event of the batch cannot be stored (its payload is not JSON, its id not a UUID, …); nothing was written.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidEvent extends Schema.TaggedError<InvalidEvent>("@evently/store/InvalidEvent")("InvalidEvent", {
  stream: Schema.String,
  index: Schema.Int,
  type: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Event #${this.index} (${this.type}) for stream '${this.stream}' cannot be stored: ${this.reason}`
  }
}

/**
 * The storage failed (connection lost, timeout, …); `operation` says what was being done, `cause` keeps the driver's
 * error. An append that fails this way may or may not have been written: retry it with the same event ids.
 *
 * @since 0.1.0
 * @category errors
 */
export class StoreError extends Schema.TaggedError<StoreError>("@evently/store/StoreError")("StoreError", {
  operation: Schema.String,
  cause: Schema.Defect()
}) {
  override get message(): string {
    return `Event store ${this.operation} failed: ${this.cause instanceof Error ? this.cause.message : String(this.cause)}`
  }
}

/**
 * The errors an append can fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type AppendError =
  | StreamName.InvalidStreamName
  | WrongExpectedVersion
  | EventIdConflict
  | InvalidEvent
  | StoreError

/**
 * The event store service.
 *
 * @since 0.1.0
 * @category services
 */
export class EventStore extends Context.Service<
  EventStore,
  {
    /**
     * Appends events to a stream atomically (all or none, one round trip), checking `expected` in the store.
     */
    readonly append: (
      stream: string,
      events: ReadonlyArray<NewEvent>,
      options?: AppendOptions
    ) => Effect.Effect<AppendResult, AppendError>
    /**
     * Reads one stream, paging in constant memory.
     */
    readonly readStream: (
      stream: string,
      options?: ReadStreamOptions
    ) => Stream.Stream<RecordedEvent, StreamName.InvalidStreamName | StoreError>
    /**
     * Reads the events of one or more categories in position order, paging in constant memory.
     */
    readonly readCategories: (
      categories: ReadonlyArray<string>,
      options?: ReadLogOptions
    ) => Stream.Stream<RecordedEvent, StoreError>
    /**
     * Reads the whole log in position order, paging in constant memory.
     */
    readonly readAll: (options?: ReadLogOptions) => Stream.Stream<RecordedEvent, StoreError>
    /**
     * The stream's current version: the number of events in it, 0 when it has none.
     */
    readonly streamVersion: (stream: string) => Effect.Effect<number, StreamName.InvalidStreamName | StoreError>
  }
>()("@evently/store/EventStore") {}
