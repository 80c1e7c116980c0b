/**
 * Typed events over the JSON event store: a codec built from a Schema union of tagged events (`_tag` is the stored
 * `event_type`, the other fields the stored `data`), with upcasters for older schema versions, and a typed view of
 * an `EventStore` that encodes on append and decodes on read.
 *
 * @since 0.1.0
 */
import type * as Arr from "effect/Array"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as EventStore from "./EventStore.ts"
import type * as StreamName from "./StreamName.ts"

/**
 * A stored event that does not decode with the codec (unknown type, a schema version the codec cannot upcast, data
 * that does not match the Schema). `issue` is the Schema's description of what is wrong.
 *
 * @since 0.1.0
 * @category errors
 */
export class EventDecodeError extends Schema.TaggedError<EventDecodeError>("@evently/store/EventDecodeError")(
  "EventDecodeError",
  {
    position: Schema.BigInt,
    stream: Schema.String,
    type: Schema.String,
    schemaVersion: Schema.Int,
    issue: Schema.String
  }
) {
  override get message(): string {
    return `Event at position ${this.position} on stream '${this.stream}' (${this.type} v${this.schemaVersion}) does not decode: ${this.issue}`
  }
}

/**
 * Turns the data stored at one schema version of a type into the (encoded) data of the next version. A Schema
 * transformation: its `Encoded` side is the old shape, its `Type` the next version's encoded shape.
 *
 * @since 0.1.0
 * @category models
 */
export type Upcaster = Schema.Decoder<unknown>

/**
 * Per event type: its current schema version (default 1), and upcasters keyed by the version they read
 * (`{ Renamed: { 1: v1ToV2, 2: v2ToV3 } }`); a row written at version `n` runs the upcasters `n`, `n + 1`, … up to
 * the current version, then decodes with the union.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<Tag extends string> {
  readonly versions?: { readonly [K in Tag]?: number } | undefined
  readonly upcasters?: { readonly [K in Tag]?: { readonly [version: number]: Upcaster } } | undefined
}

/**
 * The event as the store keeps it: type, schema version and JSON data.
 *
 * @since 0.1.0
 * @category models
 */
export interface Encoded {
  readonly type: string
  readonly schemaVersion: number
  readonly data: unknown
}

/**
 * A codec between a union of tagged events and stored rows.
 *
 * @since 0.1.0
 * @category models
 */
export interface EventCodec<A extends { readonly _tag: string }> {
  readonly schema: Schema.Codec<A, { readonly _tag: string }>
  /** The current schema version of an event type. */
  readonly versionOf: (type: string) => number
  readonly encode: (event: A) => Effect.Effect<Encoded, Schema.SchemaError>
  readonly decode: (recorded: EventStore.RecordedEvent) => Effect.Effect<A, EventDecodeError>
}

const decodeError = (recorded: EventStore.RecordedEvent, issue: string) =>
  new EventDecodeError({
    position: recorded.position,
    stream: recorded.stream,
    type: recorded.type,
    schemaVersion: recorded.schemaVersion,
    issue
  })

/**
 * Builds a codec from a Schema union of tagged events (for example `Schema.TaggedUnion({...})` or a
 * `Schema.Union` of `Schema.TaggedStruct`s / `Schema.TaggedClass`es).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <A extends { readonly _tag: string }, I extends { readonly _tag: string }>(
  schema: Schema.Codec<A, I>,
  options: Options<A["_tag"]> = {}
): EventCodec<A> => {
  // A Map: a lookup by stored type is cheaper than on an object, and a type named like an `Object.prototype` member
  // (`constructor`, `toString`) reads as no entry instead of that member.
  const versions = new Map(Object.entries(options.versions ?? {}) as Array<[string, number | undefined]>)
  const upcasters: Readonly<Record<string, Readonly<Record<number, Upcaster>> | undefined>> = options.upcasters ?? {}
  const versionOf = (type: string): number => versions.get(type) ?? 1
  const encodeSchema = Schema.encodeEffect(schema)
  const decodeSchema = Schema.decodeUnknownEffect(schema)

  const encode = (event: A): Effect.Effect<Encoded, Schema.SchemaError> =>
    Effect.map(encodeSchema(event), (encoded) => {
      const { _tag, ...data } = encoded
      return { type: _tag, schemaVersion: versionOf(_tag), data }
    })

  const decodeCurrent = Schema.decodeUnknownResult(schema)
  // Rows at today's schema version (nearly all of them) decode without an Effect per event.
  const decode = (recorded: EventStore.RecordedEvent): Effect.Effect<A, EventDecodeError> => {
    const data = recorded.data
    if (recorded.schemaVersion !== versionOf(recorded.type)) return decodeOlder(recorded)
    if (typeof data !== "object" || data === null || Array.isArray(data)) {
      return Effect.fail(decodeError(recorded, "the data is not an object"))
    }
    const result = decodeCurrent({ ...data, _tag: recorded.type })
    return Result.isSuccess(result)
      ? Effect.succeed(result.success)
      : Effect.fail(decodeError(recorded, result.failure.message))
  }

  const decodeOlder = Effect.fnUntraced(function* (recorded: EventStore.RecordedEvent) {
    const fail = (issue: string) => decodeError(recorded, issue)
    const current = versionOf(recorded.type)
    if (recorded.schemaVersion > current) {
      return yield* fail(`the codec knows schema versions up to ${current} of this type`)
    }
    let data = recorded.data
    for (let version = recorded.schemaVersion; version < current; version++) {
      const upcaster = upcasters[recorded.type]?.[version]
      if (upcaster === undefined) return yield* fail(`no upcaster from schema version ${version} to ${version + 1}`)
      data = yield* Effect.mapError(Schema.decodeUnknownEffect(upcaster)(data), (error) =>
        fail(`upcasting from schema version ${version}: ${error.message}`)
      )
    }
    if (typeof data !== "object" || data === null || Array.isArray(data)) {
      return yield* fail("the data is not an object")
    }
    return yield* Effect.mapError(decodeSchema({ ...data, _tag: recorded.type }), (error) => fail(error.message))
  })

  return { schema, versionOf, encode, decode }
}

/**
 * A recorded event with its decoded domain event in place of the JSON `data`.
 *
 * @since 0.1.0
 * @category models
 */
export interface TypedRecordedEvent<A> extends Omit<EventStore.RecordedEvent, "data"> {
  readonly event: A
}

/**
 * A domain event to append, with an optional event id (for idempotent retries) and metadata.
 *
 * @since 0.1.0
 * @category models
 */
export interface TypedNewEvent<A> {
  readonly event: A
  readonly eventId?: string | undefined
  readonly metadata?: EventStore.Metadata | undefined
}

/**
 * An `EventStore` seen through a codec: appends domain events, reads them decoded. A stored row that does not
 * decode fails the read with an {@link EventDecodeError}; a domain event that does not encode fails the append with
 * `InvalidEvent` (nothing written).
 *
 * @since 0.1.0
 * @category models
 */
export interface TypedEventStore<A extends { readonly _tag: string }> {
  readonly codec: EventCodec<A>
  readonly append: (
    stream: string,
    events: ReadonlyArray<A | TypedNewEvent<A>>,
    options?: EventStore.AppendOptions
  ) => Effect.Effect<EventStore.AppendResult, EventStore.AppendError>
  readonly readStream: (
    stream: string,
    options?: EventStore.ReadStreamOptions
  ) => Stream.Stream<
    TypedRecordedEvent<A>,
    | StreamName.InvalidStreamName
    | EventStore.InvalidReadOptions
    | EventStore.StoreError
    | EventStore.UnreadableEvent
    | EventDecodeError
  >
  readonly readCategories: (
    categories: ReadonlyArray<string>,
    options?: EventStore.ReadLogOptions
  ) => Stream.Stream<
    TypedRecordedEvent<A>,
    | StreamName.InvalidStreamName
    | EventStore.InvalidReadOptions
    | EventStore.StoreError
    | EventStore.UnreadableEvent
    | EventDecodeError
  >
  readonly readAll: (
    options?: EventStore.ReadLogOptions
  ) => Stream.Stream<
    TypedRecordedEvent<A>,
    EventStore.InvalidReadOptions | EventStore.StoreError | EventStore.UnreadableEvent | EventDecodeError
  >
  readonly streamVersion: (
    stream: string
  ) => Effect.Effect<number, StreamName.InvalidStreamName | EventStore.StoreError>
}

/**
 * Decodes a stream of recorded events page by page, at the level of its pulls: each page the store reads becomes one
 * chunk of decoded events, with no Effect per event while each decodes at once (an `Exit`: events at today's schema
 * version) and no inner stream per page. From the first event that needs an effect to decode (an upcaster), the rest
 * of the page decodes one event at a time. An event that does not decode (or whose upcaster dies) ends the stream with
 * its failure, after the events before it: the pull that meets it delivers those, and the next pull fails.
 *
 * (A `Stream.flatMap` of `Stream.chunks` building a stream per page did the same and cost about 2 µs per event of a
 * 100-event read in a busy process, more than the rest of the read.)
 */
const decodePages = <A, B, E, R>(
  stream: Stream.Stream<EventStore.RecordedEvent, E, R>,
  decode: (recorded: EventStore.RecordedEvent) => Effect.Effect<A, EventDecodeError>,
  withEvent: (recorded: EventStore.RecordedEvent, event: A) => B
): Stream.Stream<B, E | EventDecodeError, R> =>
  Stream.transformPull(stream, (pull) =>
    Effect.sync(() => {
      let stopped: Cause.Cause<EventDecodeError> | undefined
      /** The decoded events so far, or the failure at once when there are none (the failure waits otherwise). */
      const stop = (decoded: Array<B>, cause: Cause.Cause<EventDecodeError>) => {
        if (decoded.length === 0) return Effect.failCause(cause)
        stopped = cause
        return Effect.succeed(decoded as unknown as Arr.NonEmptyReadonlyArray<B>)
      }
      const decodeFrom = (
        page: ReadonlyArray<EventStore.RecordedEvent>,
        from: number,
        decoded: Array<B>
      ): Effect.Effect<Arr.NonEmptyReadonlyArray<B>, EventDecodeError> => {
        for (let i = from; i < page.length; i++) {
          const recorded = page[i]!
          const result = decode(recorded)
          if (!Exit.isExit(result)) {
            // Any failure but an interruption (a failed decode, or a defect: an upcaster that throws) comes after the
            // events before it, as it would one event at a time.
            return Effect.matchCauseEffect(result, {
              onFailure: (cause) => (Cause.hasInterrupts(cause) ? Effect.failCause(cause) : stop(decoded, cause)),
              onSuccess: (event) => {
                decoded.push(withEvent(recorded, event))
                return decodeFrom(page, i + 1, decoded)
              }
            })
          }
          // An Effect that is an Exit is that Exit (the codec's `Effect.succeed` / `Effect.fail`).
          const exit = result as Exit.Exit<A, EventDecodeError>
          if (Exit.isFailure(exit)) return stop(decoded, exit.cause)
          decoded.push(withEvent(recorded, exit.value))
        }
        return Effect.succeed(decoded as unknown as Arr.NonEmptyReadonlyArray<B>)
      }
      return Effect.suspend(() =>
        stopped === undefined ? Effect.flatMap(pull, (page) => decodeFrom(page, 0, [])) : Effect.failCause(stopped)
      )
    })
  )

const isWrapped = <A>(input: A | TypedNewEvent<A>): input is TypedNewEvent<A> =>
  typeof input === "object" && input !== null && !("_tag" in input) && "event" in input

/**
 * Views a store through a codec.
 *
 * @since 0.1.0
 * @category constructors
 */
export const typed = <A extends { readonly _tag: string }>(
  store: EventStore.EventStore["Service"],
  codec: EventCodec<A>
): TypedEventStore<A> => {
  // Field by field: a rest pattern (`{ data, ...rest }`) costs more than the decode of a small event.
  const withEvent = (recorded: EventStore.RecordedEvent, event: A): TypedRecordedEvent<A> => ({
    position: recorded.position,
    transactionId: recorded.transactionId,
    stream: recorded.stream,
    category: recorded.category,
    streamVersion: recorded.streamVersion,
    eventId: recorded.eventId,
    type: recorded.type,
    schemaVersion: recorded.schemaVersion,
    metadata: recorded.metadata,
    recordedAt: recorded.recordedAt,
    event
  })
  const decoding = <E, R>(stream: Stream.Stream<EventStore.RecordedEvent, E, R>) =>
    decodePages(stream, codec.decode, withEvent)

  const append = Effect.fn("EventCodec.append")(function* (
    stream: string,
    events: ReadonlyArray<A | TypedNewEvent<A>>,
    options?: EventStore.AppendOptions
  ) {
    const encoded = yield* Effect.forEach(events, (input, index) => {
      const wrapped = isWrapped(input) ? input : { event: input }
      return codec.encode(wrapped.event).pipe(
        Effect.map((e): EventStore.NewEvent => ({
          type: e.type,
          schemaVersion: e.schemaVersion,
          data: e.data,
          eventId: wrapped.eventId,
          metadata: wrapped.metadata
        })),
        Effect.mapError(
          (error) =>
            new EventStore.InvalidEvent({
              stream,
              index,
              type: String(wrapped.event._tag),
              reason: `it does not encode: ${error.message}`
            })
        )
      )
    })
    return yield* store.append(stream, encoded, options)
  })

  return {
    codec,
    append,
    readStream: (stream, options) => decoding(store.readStream(stream, options)),
    readCategories: (categories, options) => decoding(store.readCategories(categories, options)),
    readAll: (options) => decoding(store.readAll(options)),
    streamVersion: store.streamVersion
  }
}

/**
 * The `EventStore` in context, viewed through a codec.
 *
 * @since 0.1.0
 * @category constructors
 */
export const typedStore = <A extends { readonly _tag: string }>(
  codec: EventCodec<A>
): Effect.Effect<TypedEventStore<A>, never, EventStore.EventStore> =>
  Effect.map(EventStore.EventStore, (store) => typed(store, codec))
