/**
 * The event store port: streams of immutable JSON events with optimistic concurrency, read by stream, category or
 * the whole log. Adapters: `EventStore.layerMemory` here, `PgEventStore.layer` in `@evently/postgres`.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as ExpectedVersion from "./ExpectedVersion.ts"
import * as validate from "./internal/validate.ts"
import * as StreamName from "./StreamName.ts"

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
  /**
   * The transaction part of the event's place in the log (subscriptions read in `(transactionId, position)` order):
   * the id of the transaction that wrote it, or a later one when the stream's previous event was written by a newer
   * transaction that committed first, so that a stream is read in version order. The events of one append share it.
   */
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
 * (default the last), at most `limit` events. `batchSize` is how many rows each page fetches. `from` and `limit` are
 * integers from 0, `batchSize` from 1, all at most {@link maxReadNumber}; anything else fails the read with
 * {@link InvalidReadOptions} before any I/O.
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
 * the beginning), at most `limit` of them, `batchSize` rows a page. `after` is a bigint from 0 to
 * {@link maxPosition}; `limit` an integer from 0, `batchSize` from 1, both at most {@link maxReadNumber}; anything else
 * fails the read with {@link InvalidReadOptions} before any I/O.
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
 * `index` is the event's place in the batch, or -1 when the append's own options (expected version, metadata) are
 * at fault.
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
    const cause: unknown = this.cause
    const text =
      typeof cause === "object" && cause !== null && "message" in cause && typeof cause.message === "string"
        ? cause.message
        : typeof cause === "string"
          ? cause
          : Object.prototype.toString.call(cause)
    return `Event store ${this.operation} failed: ${text}`
  }
}

/**
 * A stored row cannot become a {@link RecordedEvent}: it was written outside evently (a restore, a manual fix, another
 * tool) with a value the store's reads do not accept, such as `metadata` that is not
 * `{ correlationId?, causationId?, headers? }` of strings (`null`, `{"headers":5}`) or a `recorded_at` no `DateTime`
 * can hold (`infinity`, beyond the year 275760). `position` and `stream` say where it is, `reason` what is wrong. A
 * read fails with it after delivering the events before that row; reading again fails the same way until the row
 * is fixed, so it is permanent, never retried. (An event that is a valid row but does not decode with a codec is an
 * `EventCodec.EventDecodeError` instead.)
 *
 * @since 0.2.0
 * @category errors
 */
export class UnreadableEvent extends Schema.TaggedError<UnreadableEvent>("@evently/store/UnreadableEvent")(
  "UnreadableEvent",
  { position: Schema.BigInt, stream: Schema.String, reason: Schema.String }
) {
  override get message(): string {
    return `Stored event at position ${this.position} on stream '${this.stream}' cannot be read: ${this.reason}`
  }
}

/**
 * A read's options are malformed (a `from`, `limit` or `batchSize` that is not an integer in range, an `after` outside
 * the positions a log can hold, an unknown `direction`): refused before any I/O, the same way by every adapter.
 * `operation` is the read (`readStream`, `readCategories`, `readAll`), `option` the option at fault and `value` what
 * it was given, rendered as text.
 *
 * @since 0.2.0
 * @category errors
 */
export class InvalidReadOptions extends Schema.TaggedError<InvalidReadOptions>("@evently/store/InvalidReadOptions")(
  "InvalidReadOptions",
  { operation: Schema.String, option: Schema.String, value: Schema.String, reason: Schema.String }
) {
  override get message(): string {
    return `Invalid ${this.operation} option ${this.option} = ${this.value}: ${this.reason}`
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
    ) => Stream.Stream<RecordedEvent, StreamName.InvalidStreamName | InvalidReadOptions | StoreError | UnreadableEvent>
    /**
     * Reads the events of one or more categories in position order, paging in constant memory. A malformed
     * category is an `InvalidStreamName` naming it.
     */
    readonly readCategories: (
      categories: ReadonlyArray<string>,
      options?: ReadLogOptions
    ) => Stream.Stream<RecordedEvent, StreamName.InvalidStreamName | InvalidReadOptions | StoreError | UnreadableEvent>
    /**
     * Reads the whole log in position order, paging in constant memory.
     */
    readonly readAll: (
      options?: ReadLogOptions
    ) => Stream.Stream<RecordedEvent, InvalidReadOptions | StoreError | UnreadableEvent>
    /**
     * The stream's current version: the number of events in it, 0 when it has none.
     */
    readonly streamVersion: (stream: string) => Effect.Effect<number, StreamName.InvalidStreamName | StoreError>
  }
>()("@evently/store/EventStore") {}

/**
 * Deepest nesting of arrays and objects accepted in an event's `data` and `metadata`.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxDepth: number = validate.maxDepth

/**
 * Largest UTF-8 size, in bytes, of one event's `data` plus `metadata` as JSON text.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxEventBytes: number = validate.maxEventBytes

/**
 * The largest `from`, `limit` or `batchSize` a read accepts: 2^31 - 1, the largest stream version and page size the
 * Postgres adapter works with.
 *
 * @since 0.2.0
 * @category constants
 */
export const maxReadNumber = 2_147_483_647

/**
 * The largest position (and `after` of a read) a log can hold: 2^63 - 1, the top of Postgres' `bigint`.
 *
 * @since 0.2.0
 * @category constants
 */
export const maxPosition = 9_223_372_036_854_775_807n

/**
 * The default number of rows a read fetches per page.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultBatchSize = 500

/**
 * An event checked and ready to store: canonical (lower-case) UUID, type, schema version, and `data` and `metadata`
 * as JSON text.
 *
 * @since 0.1.0
 * @category adapters
 */
export interface PreparedEvent {
  readonly eventId: string
  readonly type: string
  readonly schemaVersion: number
  readonly data: string
  readonly metadata: string
}

/**
 * An append checked before any I/O: what every adapter stores.
 *
 * @since 0.1.0
 * @category adapters
 */
export interface PreparedAppend {
  readonly stream: StreamName.StreamName
  readonly category: string
  readonly expected: ExpectedVersion.ExpectedVersion
  readonly events: ReadonlyArray<PreparedEvent>
}

const isMetadata = Schema.is(Metadata)

const metadataProblem = (metadata: unknown): string | undefined => {
  if (metadata === undefined) return undefined
  if (!isMetadata(metadata)) return "the metadata is not { correlationId?, causationId?, headers? } of strings"
  const problem = validate.jsonProblem(metadata)
  return problem === undefined ? undefined : `the metadata: ${problem}`
}

/**
 * Whether a value that `JSON.stringify` serialised without throwing (so it holds no cycle) is plain JSON, with no
 * message: one walk with no path and no ancestor set, the common case of an append. `false` means "look closer":
 * `validate.jsonProblem` then names the problem, and it alone decides (it accepts nothing this refuses wrongly, and
 * this accepts nothing it refuses).
 */
const isPlainJson = (value: unknown, depth: number): boolean => {
  switch (typeof value) {
    case "string":
      return !value.includes("\u0000") && value.isWellFormed()
    case "number":
      return Number.isFinite(value)
    case "boolean":
      return true
    case "object":
      break
    default:
      return false
  }
  if (value === null) return true
  if (depth >= validate.maxDepth) return false
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const element: unknown = value[i]
      // An `undefined` element (a hole or a real one) is not JSON either way.
      if (element === undefined || !isPlainJson(element, depth + 1)) return false
    }
    return true
  }
  const proto = Object.getPrototypeOf(value)
  if ((proto !== Object.prototype && proto !== null) || Object.getOwnPropertySymbols(value).length > 0) return false
  const record = value as Record<string, unknown>
  for (const key of Object.keys(record)) {
    if (key.includes("\u0000") || !key.isWellFormed() || !isPlainJson(record[key], depth + 1)) return false
  }
  return true
}

/** `JSON.stringify`, or `undefined` when it throws (a cycle, a `bigint`, a throwing getter or `toJSON`). */
const stringifyOrUndefined = (value: unknown): string | undefined => {
  try {
    return JSON.stringify(value) as string | undefined
  } catch {
    return undefined
  }
}

/**
 * An event's `data` as JSON text, or why it is not plain JSON. Serialised first (natively, and a cycle throws), then
 * checked with {@link isPlainJson}; only a value that fails that fast check is walked again by `validate.jsonProblem`
 * for the message.
 */
const serializeData = (data: unknown): { readonly json: string } | { readonly problem: string } => {
  const json = stringifyOrUndefined(data)
  if (json !== undefined && isPlainJson(data, 0)) return { json }
  const problem = validate.jsonProblem(data)
  if (problem !== undefined) return { problem }
  return json === undefined ? { problem: "JSON.stringify could not serialise it" } : { json }
}

/** The metadata text of an event with no metadata of its own and none from the append's options. */
const emptyMetadata = "{}"

/**
 * The UTF-8 size of an event's `data` and `metadata` texts when it may exceed the limit; a text of `n` UTF-16 units
 * takes at most `3n` bytes, so a short event is not counted byte by byte.
 */
const eventBytes = (data: string, metadata: string): number =>
  (data.length + metadata.length) * 3 <= validate.maxEventBytes
    ? 0
    : validate.utf8Length(data) + validate.utf8Length(metadata)

const mergeMetadata = (outer: Metadata | undefined, inner: Metadata | undefined): Metadata => {
  if (outer === undefined) return inner ?? {}
  if (inner === undefined) return outer
  const headers =
    outer.headers === undefined
      ? inner.headers
      : inner.headers === undefined
        ? outer.headers
        : { ...outer.headers, ...inner.headers }
  return headers === undefined ? { ...outer, ...inner } : { ...outer, ...inner, headers }
}

/**
 * Checks an append before any I/O (the stream name, the expected version, each event's id, type, schema version,
 * `data` and `metadata`) and prepares it for storage, generating missing event ids. Every adapter runs exactly
 * this, so they refuse exactly the same inputs.
 *
 * @since 0.1.0
 * @category adapters
 */
export const prepareAppend = (
  stream: string,
  events: ReadonlyArray<NewEvent>,
  options?: AppendOptions
): Effect.Effect<PreparedAppend, StreamName.InvalidStreamName | InvalidEvent> =>
  Effect.flatMap(StreamName.parse(stream), (name) =>
    Effect.suspend(() => {
      const fail = (index: number, type: unknown, reason: string) =>
        Effect.fail(
          new InvalidEvent({ stream: name, index, type: typeof type === "string" ? type : String(type), reason })
        )
      if (options !== undefined && (typeof options !== "object" || options === null)) {
        return fail(
          -1,
          "(options)",
          `the append options are ${options === null ? "null" : typeof options}, not an object`
        )
      }
      // Only a missing expectation means Any: `null`, like any other malformed value, is refused.
      const expected = options?.expected === undefined ? ExpectedVersion.Any : options.expected
      const expectedProblem = ExpectedVersion.problem(expected)
      if (expectedProblem !== undefined) return fail(-1, "(options)", expectedProblem)
      const outerProblem = metadataProblem(options?.metadata)
      if (outerProblem !== undefined) return fail(-1, "(options)", outerProblem)
      const prepared: Array<PreparedEvent> = []
      const seen = new Set<string>()
      for (let index = 0; index < events.length; index++) {
        const event = events[index]!
        const typeProblem = validate.typeProblem(event.type)
        if (typeProblem !== undefined) return fail(index, event.type, typeProblem)
        const schemaVersion = event.schemaVersion ?? 1
        const versionProblem = validate.schemaVersionProblem(schemaVersion)
        if (versionProblem !== undefined) return fail(index, event.type, versionProblem)
        const id = event.eventId === undefined ? { id: crypto.randomUUID() } : validate.eventId(event.eventId)
        if ("problem" in id) return fail(index, event.type, id.problem)
        if (seen.has(id.id)) return fail(index, event.type, `the event id ${id.id} appears twice in the batch`)
        seen.add(id.id)
        const serialized = serializeData(event.data)
        if ("problem" in serialized) return fail(index, event.type, `the data is not JSON: ${serialized.problem}`)
        const data = serialized.json
        const innerProblem = metadataProblem(event.metadata)
        if (innerProblem !== undefined) return fail(index, event.type, innerProblem)
        const metadata =
          options?.metadata === undefined && event.metadata === undefined
            ? emptyMetadata
            : JSON.stringify(mergeMetadata(options?.metadata, event.metadata))
        const bytes = eventBytes(data, metadata)
        if (bytes > validate.maxEventBytes) {
          return fail(index, event.type, `data and metadata take ${bytes} bytes, more than ${validate.maxEventBytes}`)
        }
        prepared.push({ eventId: id.id, type: event.type, schemaVersion, data, metadata })
      }
      return Effect.succeed<PreparedAppend>({
        stream: name,
        category: StreamName.category(name),
        expected,
        events: prepared
      })
    })
  )

const expectedAttribute = (expected: ExpectedVersion.ExpectedVersion): string => {
  switch (expected._tag) {
    case "Any":
      return "any"
    case "NoStream":
      return "no_stream"
    case "StreamExists":
      return "stream_exists"
    case "Exact":
      return String(expected.version)
  }
}

/**
 * Annotates the current span (the adapter's append span) with what the append asks: `stream`, `expected_version`
 * (`any`, `no_stream`, `stream_exists`, or the exact version as a string) and `events` (how many). Every adapter
 * calls it right after {@link prepareAppend}, so the append spans of all adapters carry the same attributes.
 *
 * @since 0.1.0
 * @category adapters
 */
export const annotateAppendSpan = (prepared: PreparedAppend): Effect.Effect<void> =>
  Effect.annotateCurrentSpan({
    stream: prepared.stream,
    expected_version: expectedAttribute(prepared.expected),
    events: prepared.events.length
  })

/**
 * A stored event found by one of an append's event ids, as an adapter reads it back to decide idempotency.
 *
 * @since 0.1.0
 * @category adapters
 */
export interface StoredEvent {
  readonly eventId: string
  readonly stream: string
  readonly streamVersion: number
  readonly type: string
  readonly schemaVersion: number
  readonly data: unknown
  readonly position: bigint
  readonly transactionId: bigint
  /** How many events the transaction that stored this one wrote to its stream: the original batch's size. */
  readonly batchSize: number
}

/**
 * Decides a retried append: when the events stored under the batch's ids are exactly this batch (same stream, types,
 * schema versions, data, consecutive versions in the same order, all of what that append wrote) it returns the first
 * append's result, otherwise an {@link EventIdConflict}. Metadata is not compared: a retry may carry other headers.
 *
 * @since 0.1.0
 * @category adapters
 */
export const replayAppend = (
  prepared: PreparedAppend,
  stored: ReadonlyArray<StoredEvent>
): Effect.Effect<AppendResult, EventIdConflict> => {
  const byId = new Map(stored.map((event) => [event.eventId.toLowerCase(), event]))
  const conflict = (eventId: string, reason: string) =>
    Effect.fail(new EventIdConflict({ stream: prepared.stream, eventId, reason }))
  const missing = prepared.events.find((event) => !byId.has(event.eventId))
  if (missing !== undefined) {
    const found = prepared.events.find((event) => byId.has(event.eventId))!
    return conflict(found.eventId, `it is stored, but event ${missing.eventId} of the same batch is not`)
  }
  const first = byId.get(prepared.events[0]!.eventId)!
  if (first.batchSize !== prepared.events.length) {
    return conflict(
      first.eventId,
      `it was stored by an append of ${first.batchSize} events, not ${prepared.events.length}`
    )
  }
  const positions: Array<bigint> = []
  for (let index = 0; index < prepared.events.length; index++) {
    const event = prepared.events[index]!
    const found = byId.get(event.eventId)!
    if (found.stream !== prepared.stream) return conflict(event.eventId, `it is stored on stream '${found.stream}'`)
    if (found.streamVersion !== first.streamVersion + index || found.transactionId !== first.transactionId) {
      return conflict(event.eventId, "it is stored in another place of another batch")
    }
    if (found.type !== event.type || found.schemaVersion !== event.schemaVersion) {
      return conflict(event.eventId, `it is stored as ${found.type} v${found.schemaVersion}`)
    }
    if (!validate.jsonEquals(found.data, JSON.parse(event.data))) {
      return conflict(event.eventId, "it is stored with other data")
    }
    positions.push(found.position)
  }
  return Effect.succeed({
    stream: prepared.stream,
    version: first.streamVersion + prepared.events.length - 1,
    positions
  })
}

/**
 * The page size and limit of a read, normalised: `batchSize` at least 1, `limit` `Infinity` when absent. It does not
 * check them: adapters run {@link prepareReadStream}, {@link prepareReadCategories} and {@link prepareReadAll}, which do.
 *
 * @since 0.1.0
 * @category adapters
 */
export const readBounds = (options?: {
  readonly limit?: number | undefined
  readonly batchSize?: number | undefined
}): { readonly limit: number; readonly batchSize: number } => ({
  limit: options?.limit === undefined ? Infinity : Math.max(0, Math.floor(options.limit)),
  batchSize: Math.max(1, Math.floor(options?.batchSize ?? defaultBatchSize))
})

/**
 * A read of one stream checked before any I/O: `from` is `undefined` when the read starts at the stream's first
 * (forward) or last (backward) event; `limit` is `Infinity` when absent.
 *
 * @since 0.2.0
 * @category adapters
 */
export interface PreparedReadStream {
  readonly stream: StreamName.StreamName
  readonly direction: "forward" | "backward"
  readonly from: number | undefined
  readonly limit: number
  readonly batchSize: number
}

/**
 * A read of the log (or of some categories of it) checked before any I/O: `limit` is `Infinity` when absent, and
 * `categories` holds each category once (empty for `readAll`).
 *
 * @since 0.2.0
 * @category adapters
 */
export interface PreparedReadLog {
  readonly categories: ReadonlyArray<string>
  readonly after: bigint
  readonly limit: number
  readonly batchSize: number
}

const renderValue = (value: unknown): string => {
  switch (typeof value) {
    case "bigint":
      return `${value}n`
    case "string":
      return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)
    case "object":
      return value === null ? "null" : Array.isArray(value) ? "an array" : "an object"
    default:
      return String(value)
  }
}

/** Reads the options object's fields, or says why it is not an object of options. */
const optionsOf = (
  operation: string,
  options: unknown
): { readonly options: Record<string, unknown> } | { readonly error: InvalidReadOptions } =>
  options === undefined
    ? { options: {} }
    : typeof options === "object" && options !== null && !Array.isArray(options)
      ? { options: options as Record<string, unknown> }
      : {
          error: new InvalidReadOptions({
            operation,
            option: "options",
            value: renderValue(options),
            reason: "the options of a read are an object (or nothing)"
          })
        }

/** The value of a numeric option (`fallback` when absent), or why it is not an integer in `[min, maxReadNumber]`. */
const countOption = <F extends number | undefined>(
  operation: string,
  options: Record<string, unknown>,
  option: string,
  min: number,
  fallback: F
): number | F | InvalidReadOptions => {
  const value = options[option]
  if (value === undefined) return fallback
  if (typeof value === "number" && Number.isInteger(value) && value >= min && value <= maxReadNumber) return value
  return new InvalidReadOptions({
    operation,
    option,
    value: renderValue(value),
    reason: `it must be an integer from ${min} to ${maxReadNumber}`
  })
}

/**
 * Checks the options of a read of one stream before any I/O (the stream name, then `direction`, `from`, `limit` and
 * `batchSize`) and normalises them. Every adapter runs exactly this, so they refuse exactly the same reads.
 *
 * @since 0.2.0
 * @category adapters
 */
export const prepareReadStream = (
  stream: string,
  options?: ReadStreamOptions
): Effect.Effect<PreparedReadStream, StreamName.InvalidStreamName | InvalidReadOptions> =>
  Effect.flatMap(StreamName.parse(stream), (name) =>
    Effect.suspend(() => {
      const operation = "readStream"
      const checked = optionsOf(operation, options)
      if ("error" in checked) return Effect.fail(checked.error)
      const direction = checked.options.direction ?? "forward"
      if (direction !== "forward" && direction !== "backward") {
        return Effect.fail(
          new InvalidReadOptions({
            operation,
            option: "direction",
            value: renderValue(direction),
            reason: 'it must be "forward" or "backward"'
          })
        )
      }
      const from = countOption(operation, checked.options, "from", 0, undefined)
      if (from instanceof InvalidReadOptions) return Effect.fail(from)
      const limit = countOption(operation, checked.options, "limit", 0, Infinity)
      if (limit instanceof InvalidReadOptions) return Effect.fail(limit)
      const batchSize = countOption(operation, checked.options, "batchSize", 1, defaultBatchSize)
      if (batchSize instanceof InvalidReadOptions) return Effect.fail(batchSize)
      return Effect.succeed<PreparedReadStream>({
        stream: name,
        direction,
        from,
        limit,
        batchSize
      })
    })
  )

/**
 * Checks a read of some categories before any I/O (each category, then `after`, `limit` and `batchSize`) and
 * normalises it. Every adapter runs exactly this, so they refuse exactly the same reads.
 *
 * @since 0.2.0
 * @category adapters
 */
export const prepareReadCategories = (
  categories: ReadonlyArray<string>,
  options?: ReadLogOptions
): Effect.Effect<PreparedReadLog, StreamName.InvalidStreamName | InvalidReadOptions> =>
  Effect.suspend(() => {
    if (!Array.isArray(categories)) {
      return Effect.fail(
        new InvalidReadOptions({
          operation: "readCategories",
          option: "categories",
          value: renderValue(categories),
          reason: "the categories of a read are an array of category names"
        })
      )
    }
    const unique = [...new Set(categories)]
    return Effect.andThen(
      Effect.forEach(unique, StreamName.parseCategory, { discard: true }),
      Effect.suspend(() => logOptions("readCategories", unique, options))
    )
  })

/**
 * Checks a read of the whole log before any I/O (`after`, `limit` and `batchSize`) and normalises it. Every adapter
 * runs exactly this, so they refuse exactly the same reads.
 *
 * @since 0.2.0
 * @category adapters
 */
export const prepareReadAll = (options?: ReadLogOptions): Effect.Effect<PreparedReadLog, InvalidReadOptions> =>
  Effect.suspend(() => logOptions("readAll", [], options))

const logOptions = (
  operation: string,
  categories: ReadonlyArray<string>,
  options: ReadLogOptions | undefined
): Effect.Effect<PreparedReadLog, InvalidReadOptions> => {
  const checked = optionsOf(operation, options)
  if ("error" in checked) return Effect.fail(checked.error)
  const after = checked.options.after === undefined ? 0n : checked.options.after
  if (typeof after !== "bigint" || after < 0n || after > maxPosition) {
    return Effect.fail(
      new InvalidReadOptions({
        operation,
        option: "after",
        value: renderValue(after),
        reason: `it must be a bigint from 0n to ${maxPosition}n`
      })
    )
  }
  const limit = countOption(operation, checked.options, "limit", 0, Infinity)
  if (limit instanceof InvalidReadOptions) return Effect.fail(limit)
  const batchSize = countOption(operation, checked.options, "batchSize", 1, defaultBatchSize)
  if (batchSize instanceof InvalidReadOptions) return Effect.fail(batchSize)
  return Effect.succeed<PreparedReadLog>({ categories, after, limit, batchSize })
}

interface MemoryRow {
  readonly position: bigint
  readonly transactionId: bigint
  readonly stream: StreamName.StreamName
  readonly category: string
  readonly streamVersion: number
  readonly eventId: string
  readonly type: string
  readonly schemaVersion: number
  readonly data: string
  readonly metadata: string
  readonly recordedAt: DateTime.Utc
}

const toRecorded = (row: MemoryRow): RecordedEvent => ({
  position: row.position,
  transactionId: row.transactionId,
  stream: row.stream,
  category: row.category,
  streamVersion: row.streamVersion,
  eventId: row.eventId,
  type: row.type,
  schemaVersion: row.schemaVersion,
  data: JSON.parse(row.data),
  metadata: JSON.parse(row.metadata),
  recordedAt: row.recordedAt
})

/** The index of the first row whose position is greater than `after` (rows sorted by position). */
const firstAfter = (rows: ReadonlyArray<MemoryRow>, after: bigint): number => {
  let low = 0
  let high = rows.length
  while (low < high) {
    const mid = (low + high) >>> 1
    if (rows[mid]!.position <= after) low = mid + 1
    else high = mid
  }
  return low
}

/**
 * Pages through position-ordered rows: each page is at most `batchSize` rows after the last one emitted.
 */
const pageLog = (
  page: (after: bigint, size: number) => ReadonlyArray<MemoryRow>,
  read: PreparedReadLog
): Stream.Stream<RecordedEvent> =>
  Stream.paginate({ after: read.after, remaining: read.limit }, (state) =>
    Effect.sync(() => {
      if (state.remaining <= 0) return [[], Option.none()] as const
      const size = Math.min(read.batchSize, state.remaining)
      const rows = page(state.after, size)
      const next =
        rows.length < size
          ? Option.none()
          : Option.some({ after: rows[rows.length - 1]!.position, remaining: state.remaining - rows.length })
      return [rows.map(toRecorded), next] as const
    })
  )

/**
 * Builds an in-memory event store with the same semantics as the Postgres adapter: the same validation, atomic
 * appends checked against the expectation, increasing positions, one transaction id per append, `recordedAt` from
 * `Clock`, idempotent re-appends and {@link EventIdConflict}. For unit tests and prototypes; nothing is persisted.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<EventStore["Service"]> = Effect.sync(() => {
  const log: Array<MemoryRow> = []
  const streams = new Map<string, Array<MemoryRow>>()
  const categories = new Map<string, Array<MemoryRow>>()
  const ids = new Map<string, MemoryRow>()
  const transactions = new Map<bigint, number>()
  let lastTransaction = 0n

  const append = Effect.fn("EventStore.memory.append")(function* (
    stream: string,
    events: ReadonlyArray<NewEvent>,
    options?: AppendOptions
  ) {
    const prepared = yield* prepareAppend(stream, events, options)
    yield* annotateAppendSpan(prepared)
    const millis = yield* Clock.currentTimeMillis
    const rows = streams.get(prepared.stream) ?? []
    const stored = prepared.events.flatMap((event) => {
      const row = ids.get(event.eventId)
      if (row === undefined) return []
      const batchSize = transactions.get(row.transactionId) ?? 0
      return [{ ...row, data: JSON.parse(row.data) as unknown, batchSize }]
    })
    if (stored.length > 0) return yield* replayAppend(prepared, stored)
    const actual = rows.length
    if (!ExpectedVersion.matches(prepared.expected, actual)) {
      return yield* new WrongExpectedVersion({ stream: prepared.stream, expected: prepared.expected, actual })
    }
    if (prepared.events.length === 0) return { stream: prepared.stream, version: actual, positions: [] }
    const recordedAt = DateTime.makeUnsafe(millis)
    lastTransaction += 1n
    transactions.set(lastTransaction, prepared.events.length)
    const categoryRows = categories.get(prepared.category) ?? []
    const positions = prepared.events.map((event, index) => {
      const row: MemoryRow = {
        position: BigInt(log.length + 1),
        transactionId: lastTransaction,
        stream: prepared.stream,
        category: prepared.category,
        streamVersion: actual + index + 1,
        eventId: event.eventId,
        type: event.type,
        schemaVersion: event.schemaVersion,
        data: event.data,
        metadata: event.metadata,
        recordedAt
      }
      log.push(row)
      rows.push(row)
      categoryRows.push(row)
      ids.set(row.eventId, row)
      return row.position
    })
    streams.set(prepared.stream, rows)
    categories.set(prepared.category, categoryRows)
    return { stream: prepared.stream, version: rows.length, positions }
  })

  const readStream = (
    stream: string,
    options?: ReadStreamOptions
  ): Stream.Stream<RecordedEvent, StreamName.InvalidStreamName | InvalidReadOptions> =>
    Stream.unwrap(
      Effect.map(prepareReadStream(stream, options), (read) => {
        const backward = read.direction === "backward"
        const rowsOf = () => streams.get(read.stream) ?? []
        return Stream.paginate({ from: read.from, remaining: read.limit }, (state) =>
          Effect.sync(() => {
            const rows = rowsOf()
            const from = state.from ?? (backward ? rows.length : 1)
            if (state.remaining <= 0) return [[], Option.none()] as const
            const size = Math.min(read.batchSize, state.remaining)
            const page = backward
              ? rows
                  .slice(Math.max(0, Math.min(from, rows.length) - size), Math.max(0, Math.min(from, rows.length)))
                  .toReversed()
              : rows.slice(Math.max(0, from - 1), Math.max(0, from - 1) + size)
            const last = page[page.length - 1]
            const next =
              page.length < size || last === undefined
                ? Option.none()
                : Option.some({
                    from: backward ? last.streamVersion - 1 : last.streamVersion + 1,
                    remaining: state.remaining - page.length
                  })
            return [page.map(toRecorded), next] as const
          })
        )
      })
    )

  const readCategories = (
    names: ReadonlyArray<string>,
    options?: ReadLogOptions
  ): Stream.Stream<RecordedEvent, StreamName.InvalidStreamName | InvalidReadOptions> =>
    Stream.unwrap(
      Effect.map(prepareReadCategories(names, options), (read) =>
        pageLog((after, size) => {
          const merged: Array<MemoryRow> = []
          for (const name of read.categories) {
            const rows = categories.get(name) ?? []
            const start = firstAfter(rows, after)
            for (let i = start; i < rows.length && i < start + size; i++) merged.push(rows[i]!)
          }
          merged.sort((a, b) => (a.position < b.position ? -1 : a.position > b.position ? 1 : 0))
          return merged.slice(0, size)
        }, read)
      )
    )

  const readAll = (options?: ReadLogOptions): Stream.Stream<RecordedEvent, InvalidReadOptions> =>
    Stream.unwrap(
      Effect.map(prepareReadAll(options), (read) =>
        pageLog((after, size) => log.slice(firstAfter(log, after), firstAfter(log, after) + size), read)
      )
    )

  const streamVersion = Effect.fn("EventStore.memory.streamVersion")(function* (stream: string) {
    const name = yield* StreamName.parse(stream)
    yield* Effect.annotateCurrentSpan("stream", name)
    return streams.get(name)?.length ?? 0
  })

  return EventStore.of({ append, readStream, readCategories, readAll, streamVersion })
})

/**
 * An in-memory {@link EventStore}: see {@link makeMemory}. Each build of the layer starts empty.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<EventStore> = Layer.effect(EventStore, makeMemory)
