/**
 * The other side of the relay, for services without access to the event store: a JetStream durable consumer as an
 * Effect `Stream` of deliveries, each carrying the recorded event (or, with a codec, the decoded domain event) and
 * its `ack`, `nak` and `term`. A delivery not acked is delivered again after the consumer's ack wait.
 *
 * @since 0.1.0
 */
import * as EventCodec from "@evently/store/EventCodec"
import type * as EventStore from "@evently/store/EventStore"
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  type JsMsg
} from "@nats-io/jetstream"
import { nanos } from "@nats-io/transport-node"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Stream from "effect/Stream"
import * as Envelope from "./Envelope.ts"
import * as JetStreamStream from "./JetStreamStream.ts"
import * as NatsClient from "./NatsClient.ts"

/**
 * The consumer: the JetStream `stream` and the `durable` consumer name (created or updated with these settings),
 * `filterSubjects` (default all of the stream; see `Subjects.filter` for categories and types), `ackWait` before an
 * unacked delivery is redelivered (default 30 seconds), `maxDeliver` attempts (default unlimited), `maxAckPending`
 * deliveries awaiting their ack across all the consumer's clients (default 1000: the backpressure) and `buffer`
 * messages pulled ahead by this client (default 100).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly stream: string
  readonly durable: string
  readonly filterSubjects?: ReadonlyArray<string> | undefined
  readonly ackWait?: Duration.Input | undefined
  readonly maxDeliver?: number | undefined
  readonly maxAckPending?: number | undefined
  readonly buffer?: number | undefined
}

/**
 * One delivered message: the `event`, how many times it was delivered (`deliveryCount`, 1 the first time), and what
 * to tell JetStream: `ack` (done; waits for the server's confirmation), `nak` (deliver it again, after `delay`) or
 * `term` (never deliver it again).
 *
 * @since 0.1.0
 * @category models
 */
export interface Delivery<A> {
  readonly event: A
  readonly subject: string
  readonly deliveryCount: number
  readonly streamSequence: number
  readonly ack: Effect.Effect<void, JetStreamStream.JetStreamFailure>
  readonly nak: (delay?: Duration.Input) => Effect.Effect<void>
  readonly term: (reason?: string) => Effect.Effect<void>
}

/**
 * Messages delivered to consumers (attributes `stream`, `durable`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const received = Metric.counter("evently_nats_consumer_received", {
  description: "Messages a JetStream consumer stream delivered"
})

/**
 * Deliveries acked, naked or terminated (attribute `outcome`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const settled = Metric.counter("evently_nats_consumer_settled", {
  description: "Deliveries acked, naked or terminated (attribute outcome)"
})

const delivery = <A>(message: JsMsg, event: A, attributes: Record<string, string>): Delivery<A> => {
  const count = (outcome: string) => Metric.update(Metric.withAttributes(settled, { ...attributes, outcome }), 1)
  return {
    event,
    subject: message.subject,
    deliveryCount: message.info.deliveryCount,
    streamSequence: message.seq,
    ack: Effect.tryPromise({
      try: () => message.ackAck(),
      catch: (cause) => new JetStreamStream.JetStreamFailure({ operation: `ack of message ${message.seq}`, cause })
    }).pipe(Effect.andThen(count("ack"))),
    nak: (delay) =>
      Effect.andThen(
        Effect.sync(() =>
          message.nak(delay === undefined ? undefined : Duration.toMillis(Duration.fromInputUnsafe(delay)))
        ),
        count("nak")
      ),
    term: (reason) =>
      Effect.andThen(
        Effect.sync(() => message.term(reason)),
        count("term")
      )
  }
}

const fail = (operation: string) => (cause: unknown) => new JetStreamStream.JetStreamFailure({ operation, cause })

const millisToNanos = (input: Duration.Input | undefined, fallback: Duration.Input) =>
  nanos(Duration.toMillis(Duration.fromInputUnsafe(input ?? fallback)))

// The durable consumer with these settings: created when missing, its settings updated when it exists (a consumer
// keeps its place in the stream across updates).
const upsert = (manager: JetStreamManager, options: Options) => {
  const filters = options.filterSubjects ?? []
  const settings = {
    ack_wait: millisToNanos(options.ackWait, "30 seconds"),
    max_deliver: options.maxDeliver ?? -1,
    max_ack_pending: options.maxAckPending ?? 1000,
    ...(filters.length === 1 ? { filter_subject: filters[0]! } : {}),
    ...(filters.length > 1 ? { filter_subjects: [...filters] } : {})
  }
  return manager.consumers.info(options.stream, options.durable).then(
    () => manager.consumers.update(options.stream, options.durable, settings),
    (error: unknown) =>
      error instanceof JetStreamApiError && error.code === JetStreamApiCodes.ConsumerNotFound
        ? manager.consumers.add(options.stream, {
            durable_name: options.durable,
            ack_policy: AckPolicy.Explicit,
            deliver_policy: DeliverPolicy.All,
            ...settings
          })
        : Promise.reject(error)
  )
}

/**
 * Creates or updates the durable consumer, then pulls its messages as a stream of raw JetStream messages (closed
 * when the stream ends).
 *
 * @since 0.1.0
 * @category constructors
 */
export const messages = (
  options: Options
): Stream.Stream<JsMsg, JetStreamStream.JetStreamFailure, NatsClient.NatsClient> =>
  Stream.unwrap(
    Effect.gen(function* () {
      const { jetstream, manager } = yield* NatsClient.NatsClient
      yield* Effect.tryPromise({
        try: () => upsert(manager, options),
        catch: fail(`creating or updating consumer '${options.durable}' on stream '${options.stream}'`)
      })
      const consumer = yield* Effect.tryPromise({
        try: () => jetstream.consumers.get(options.stream, options.durable),
        catch: fail(`getting consumer '${options.durable}'`)
      })
      const iterator = yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: () => consumer.consume({ max_messages: options.buffer ?? 100 }),
          catch: fail(`consuming '${options.durable}'`)
        }),
        (pulling) => Effect.promise(() => pulling.close().then(() => undefined))
      )
      return Stream.fromAsyncIterable(iterator, fail(`reading '${options.durable}'`))
    })
  )

/**
 * The durable consumer's deliveries with the recorded event each message carries. A message that is not an evently
 * event ends the stream with `InvalidEnvelope` (it stays unacked, so it is delivered again to the next run).
 *
 * @since 0.1.0
 * @category constructors
 */
export const events = (
  options: Options
): Stream.Stream<
  Delivery<EventStore.RecordedEvent>,
  JetStreamStream.JetStreamFailure | Envelope.InvalidEnvelope,
  NatsClient.NatsClient
> => {
  const attributes = { stream: options.stream, durable: options.durable }
  // Tagged once: a tagged metric computes its series key on its first update and keeps it.
  const receivedHere = Metric.withAttributes(received, attributes)
  return messages(options).pipe(
    Stream.mapEffect((message) =>
      Effect.andThen(
        Metric.update(receivedHere, 1),
        Effect.map(Effect.fromResult(Envelope.decode(message)), (event) => delivery(message, event, attributes))
      )
    )
  )
}

/**
 * The durable consumer's deliveries with the domain event decoded by `codec` (upcasting older schema versions). A
 * message whose event does not decode ends the stream with `EventDecodeError` (left unacked).
 *
 * @since 0.1.0
 * @category constructors
 */
export const typed = <A extends { readonly _tag: string }>(
  codec: EventCodec.EventCodec<A>,
  options: Options
): Stream.Stream<
  Delivery<EventCodec.TypedRecordedEvent<A>>,
  JetStreamStream.JetStreamFailure | Envelope.InvalidEnvelope | EventCodec.EventDecodeError,
  NatsClient.NatsClient
> =>
  Stream.mapEffect(events(options), (d) =>
    Effect.map(codec.decode(d.event), (event): Delivery<EventCodec.TypedRecordedEvent<A>> => {
      const { data: _data, ...rest } = d.event
      return { ...d, event: { ...rest, event } }
    })
  )
