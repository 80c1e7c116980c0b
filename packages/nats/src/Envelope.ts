/**
 * How an event travels in a NATS message: the body is the event's `data` as JSON, the rest is in headers. The event id
 * is `Nats-Msg-Id` (JetStream's deduplication key); `Evently-Stream`, `Evently-Type`, `Evently-Correlation-Id` and
 * `Evently-Causation-Id` are URI-component-encoded (unchanged for the usual names and UUIDs); `Evently-Metadata` keeps
 * the event's whole metadata as JSON, which is what {@link decode} reads back.
 *
 * @since 0.1.0
 */
import type * as EventStore from "@evently/store/EventStore"
import * as StreamName from "@evently/store/StreamName"
import { headers as natsHeaders, type MsgHdrs } from "@nats-io/transport-node"
import * as DateTime from "effect/DateTime"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"

/**
 * The header names.
 *
 * @since 0.1.0
 * @category constants
 */
export const Headers = {
  MsgId: "Nats-Msg-Id",
  Stream: "Evently-Stream",
  Category: "Evently-Category",
  StreamVersion: "Evently-Stream-Version",
  Position: "Evently-Position",
  TransactionId: "Evently-Transaction-Id",
  Type: "Evently-Type",
  SchemaVersion: "Evently-Schema-Version",
  RecordedAt: "Evently-Recorded-At",
  CorrelationId: "Evently-Correlation-Id",
  CausationId: "Evently-Causation-Id",
  Metadata: "Evently-Metadata",
  ContentType: "Content-Type",
  TraceParent: "traceparent"
} as const

/**
 * A message as published: subject, headers and the JSON body.
 *
 * @since 0.1.0
 * @category models
 */
export interface Message {
  readonly subject: string
  readonly headers: MsgHdrs
  readonly payload: Uint8Array
}

/**
 * A message that is not an evently event: a header is missing or malformed, or the body is not JSON.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidEnvelope extends Schema.TaggedError<InvalidEnvelope>("@evently/nats/InvalidEnvelope")(
  "InvalidEnvelope",
  { subject: Schema.String, reason: Schema.String }
) {
  override get message(): string {
    return `The message on ${this.subject} is not an evently event: ${this.reason}`
  }
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const text = (value: string) => encodeURIComponent(value.toWellFormed())

/**
 * The message of a recorded event on `subject`; `traceParent` (a W3C `traceparent`) links the broker's side to the
 * relay's span.
 *
 * @since 0.1.0
 * @category constructors
 */
export const encode = (event: EventStore.RecordedEvent, subject: string, traceParent?: string): Message => {
  const h = natsHeaders()
  h.set(Headers.MsgId, event.eventId)
  h.set(Headers.Stream, text(event.stream))
  h.set(Headers.Category, event.category)
  h.set(Headers.StreamVersion, String(event.streamVersion))
  h.set(Headers.Position, String(event.position))
  h.set(Headers.TransactionId, String(event.transactionId))
  h.set(Headers.Type, text(event.type))
  h.set(Headers.SchemaVersion, String(event.schemaVersion))
  h.set(Headers.RecordedAt, DateTime.formatIso(event.recordedAt))
  if (event.metadata.correlationId !== undefined) h.set(Headers.CorrelationId, text(event.metadata.correlationId))
  if (event.metadata.causationId !== undefined) h.set(Headers.CausationId, text(event.metadata.causationId))
  h.set(Headers.Metadata, JSON.stringify(event.metadata))
  h.set(Headers.ContentType, "application/json")
  if (traceParent !== undefined) h.set(Headers.TraceParent, traceParent)
  return { subject, headers: h, payload: encoder.encode(JSON.stringify(event.data)) }
}

const isMetadata = Schema.is(
  Schema.Struct({
    correlationId: Schema.optionalKey(Schema.String),
    causationId: Schema.optionalKey(Schema.String),
    headers: Schema.optionalKey(Schema.Record(Schema.String, Schema.String))
  })
)

type Parsed<A> = { readonly ok: true; readonly value: A } | { readonly ok: false; readonly reason: string }

const parseWith = <A>(label: string, raw: string, parse: (raw: string) => A | undefined): Parsed<A> => {
  try {
    const value = parse(raw)
    return value === undefined
      ? { ok: false, reason: `${label} is malformed: ${JSON.stringify(raw)}` }
      : { ok: true, value }
  } catch {
    return { ok: false, reason: `${label} is malformed: ${JSON.stringify(raw)}` }
  }
}

const valueOf = <A>(parsed: Parsed<A>) => (parsed as { readonly value: A }).value
const bigintOf = (raw: string) => (/^\d+$/.test(raw) ? BigInt(raw) : undefined)
const intOf = (raw: string) => (/^\d+$/.test(raw) && Number.isSafeInteger(Number(raw)) ? Number(raw) : undefined)

/**
 * The recorded event a message carries, or why it carries none.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = (message: {
  readonly subject: string
  readonly headers?: MsgHdrs | undefined
  readonly data: Uint8Array
}): Result.Result<EventStore.RecordedEvent, InvalidEnvelope> => {
  const h = message.headers
  const field = <A>(name: string, parse: (raw: string) => A | undefined): Parsed<A> => {
    const raw = h?.get(name) ?? ""
    return raw === "" ? { ok: false, reason: `the header ${name} is missing` } : parseWith(name, raw, parse)
  }
  const fields = {
    eventId: field(Headers.MsgId, (raw) => raw),
    stream: field(Headers.Stream, (raw) => {
      const stream = decodeURIComponent(raw)
      return StreamName.is(stream) ? stream : undefined
    }),
    streamVersion: field(Headers.StreamVersion, intOf),
    position: field(Headers.Position, bigintOf),
    transactionId: field(Headers.TransactionId, bigintOf),
    type: field(Headers.Type, decodeURIComponent),
    schemaVersion: field(Headers.SchemaVersion, intOf),
    recordedAt: field(Headers.RecordedAt, (raw) =>
      Option.getOrUndefined(Option.map(DateTime.make(raw), DateTime.toUtc))
    ),
    metadata: field(Headers.Metadata, (raw) => {
      const value: unknown = JSON.parse(raw)
      return isMetadata(value) ? value : undefined
    }),
    data: parseWith("the body", decoder.decode(message.data), (raw) => JSON.parse(raw) as unknown)
  }
  for (const parsed of Object.values(fields)) {
    if (!parsed.ok) return Result.fail(new InvalidEnvelope({ subject: message.subject, reason: parsed.reason }))
  }
  const stream = valueOf(fields.stream)
  return Result.succeed({
    position: valueOf(fields.position),
    transactionId: valueOf(fields.transactionId),
    stream,
    category: StreamName.category(stream),
    streamVersion: valueOf(fields.streamVersion),
    eventId: valueOf(fields.eventId),
    type: valueOf(fields.type),
    schemaVersion: valueOf(fields.schemaVersion),
    data: valueOf(fields.data),
    metadata: valueOf(fields.metadata),
    recordedAt: valueOf(fields.recordedAt)
  })
}
