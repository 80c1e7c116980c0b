/**
 * Publish after commit: a checkpointed subscription that relays each matching event to a JetStream subject. Each
 * batch is published in order with asynchronous acks (bounded in flight) and the checkpoint moves only once JetStream
 * acknowledged every message of it; a failed or unacknowledged publish fails the batch, which is published again
 * from the checkpoint after a backoff. The event id is the message's `Nats-Msg-Id`, so JetStream drops what it
 * already holds (within its duplicate window): each event lands once, in per-stream order.
 *
 * @since 0.1.0
 */
import type * as EventStore from "@evently/store/EventStore"
import * as SubscriptionLifecycle from "@evently/store/SubscriptionLifecycle"
import * as Subscriptions from "@evently/store/Subscriptions"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Stream from "effect/Stream"
import * as Publisher from "./internal/publisher.ts"
import * as JetStreamStream from "./JetStreamStream.ts"
import * as NatsClient from "./NatsClient.ts"
import * as Subjects from "./Subjects.ts"

/**
 * The relay: its subscription `name` (default `nats-relay`; one active worker per partition across processes), the
 * JetStream `stream` it publishes into (created when `create` is set, otherwise checked), the subject `prefix`
 * (default `evently`) or a `subject` function (default `<prefix>.<category>.<type>`; `Subjects.microcosm(prefix)` for
 * microcosm's names), `maxInFlight` publishes awaiting their ack (default 256), the `recovery` backoff after a failed
 * batch, and the subscription's own options (`categories`, `eventTypes`, `start`, `batchSize` (default 500),
 * `partitions`, `partition`, `pollInterval`, lifecycle reporting and the `lifecycles` to report to).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options extends Omit<Subscriptions.SubscribeOptions, "ephemeral">, SubscriptionLifecycle.Reporting {
  readonly name?: string | undefined
  readonly stream: JetStreamStream.Settings
  readonly create?: boolean | undefined
  readonly prefix?: string | undefined
  readonly subject?: Subjects.SubjectOf | undefined
  readonly maxInFlight?: number | undefined
  readonly recovery?: Subscriptions.Recovery | undefined
  /**
   * Where the relay reports the lifecycle of its partitions (make one with `SubscriptionLifecycle.make` and watch
   * `lifecycles.events(name)`); by default lifecycles of its own, seen only in the logs and metrics.
   */
  readonly lifecycles?: SubscriptionLifecycle.Lifecycles | undefined
}

/**
 * The default subscription name of the relay.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultName = "nats-relay"

/**
 * Messages sent to JetStream (attribute `stream`, the JetStream stream).
 *
 * @since 0.1.0
 * @category metrics
 */
export const published = Metric.counter("evently_nats_published", {
  description: "Messages the relay sent to JetStream"
})

/**
 * Messages JetStream acknowledged (duplicates included).
 *
 * @since 0.1.0
 * @category metrics
 */
export const acked = Metric.counter("evently_nats_acked", { description: "Messages JetStream acknowledged" })

/**
 * Acknowledged messages JetStream already held (a batch published again after a fault).
 *
 * @since 0.1.0
 * @category metrics
 */
export const duplicates = Metric.counter("evently_nats_duplicates", {
  description: "Messages JetStream acknowledged as duplicates of ones it held"
})

/**
 * Batches that failed to publish (and will be published again from the checkpoint).
 *
 * @since 0.1.0
 * @category metrics
 */
export const failures = Metric.counter("evently_nats_failures", {
  description: "Batches the relay failed to publish"
})

/**
 * Seconds from the commit of the last event of a batch to JetStream's ack of it.
 *
 * @since 0.1.0
 * @category metrics
 */
export const lagSeconds = Metric.gauge("evently_nats_lag_seconds", {
  description: "Seconds from the commit of the last relayed event to its ack by JetStream"
})

/**
 * The errors that end the relay: those of its subscription, a subject function's {@link Subjects.InvalidSubject},
 * a missing or unfit JetStream stream, a failed JetStream request at start.
 *
 * @since 0.1.0
 * @category errors
 */
export type RelayError =
  | Subscriptions.SubscriptionError
  | Subscriptions.HandlerFailed
  | Subjects.InvalidSubject
  | JetStreamStream.MissingStream
  | JetStreamStream.StreamMismatch
  | JetStreamStream.JetStreamFailure

const optionsProblem = (options: Options): string | undefined => {
  const max = options.maxInFlight
  if (max !== undefined && (!Number.isSafeInteger(max) || max < 1 || max > 65_536)) {
    return `maxInFlight must be a whole number from 1 to 65536, not ${max}`
  }
  const prefix = options.prefix
  if (prefix !== undefined && Subjects.problem(prefix) !== undefined) {
    return `the subject prefix ${JSON.stringify(prefix)}: ${Subjects.problem(prefix)}`
  }
  return typeof options.stream?.name === "string" &&
    options.stream.name.length > 0 &&
    !/[\s.*>]/.test(options.stream.name)
    ? undefined
    : `the JetStream stream name must be non-empty, without whitespace, '.', '*' or '>'`
}

const traceParent = Effect.map(Effect.option(Effect.currentSpan), (span) =>
  span._tag === "Some" && /^[0-9a-f]{32}$/.test(span.value.traceId) && /^[0-9a-f]{16}$/.test(span.value.spanId)
    ? `00-${span.value.traceId}-${span.value.spanId}-01`
    : undefined
)

// Publishes one batch and waits for every ack, with its metrics and span.
const publisher = (options: Options, client: NatsClient.NatsClient["Service"], subjectOf: Subjects.SubjectOf) => {
  const attributes = { stream: options.stream.name }
  const count = (metric: Metric.Metric<number, unknown>, n: number) =>
    Metric.update(Metric.withAttributes(metric, attributes), n)
  return (batch: Subscriptions.Batch) =>
    Effect.gen(function* () {
      const outcome = yield* Publisher.publishBatch(
        client.jetstream,
        client.disconnects,
        options.stream.name,
        batch.events,
        subjectOf,
        options.maxInFlight ?? 256,
        yield* traceParent,
        (n) => count(published, n)
      ).pipe(Effect.tapError(() => count(failures, 1)))
      yield* count(acked, outcome.acked)
      yield* count(duplicates, outcome.duplicates)
      const last = batch.events[batch.events.length - 1]
      if (last !== undefined) {
        const now = yield* Clock.currentTimeMillis
        yield* count(lagSeconds, (now - DateTime.toEpochMillis(last.recordedAt)) / 1000)
      }
    }).pipe(
      Effect.withSpan("NatsRelay.publish", {
        attributes: {
          subscription: batch.subscription,
          partition: batch.partition,
          "jetstream.stream": options.stream.name,
          events: batch.events.length,
          "position.first": String(batch.events[0]?.position ?? ""),
          "position.last": String(batch.events[batch.events.length - 1]?.position ?? ""),
          "correlation.id": batch.events[0]?.metadata.correlationId ?? ""
        }
      })
    )
}

// The batch with a commit that first publishes it and waits for every ack: the checkpoint moves only after them.
const publishedBeforeCommit =
  (publish: (batch: Subscriptions.Batch) => Effect.Effect<void, Subscriptions.SubscriptionError>) =>
  (batch: Subscriptions.Batch): Subscriptions.Batch => ({
    subscription: batch.subscription,
    partition: batch.partition,
    events: batch.events,
    checkpoint: batch.checkpoint,
    commit: Effect.andThen(publish(batch), batch.commit),
    commitWith: (effect) => Effect.andThen(publish(batch), batch.commitWith(effect)),
    isolate: batch.isolate,
    park: batch.park
  })

// The handler of the run: it only checks each event's subject (publishing happens at commit, per batch).
const checkSubject = (subjectOf: Subjects.SubjectOf) => (event: EventStore.RecordedEvent) => {
  const subject = subjectOf(event)
  const problem = Subjects.problem(subject)
  return problem === undefined
    ? Effect.void
    : Effect.fail(new Subjects.InvalidSubject({ subject: String(subject), eventId: event.eventId, reason: problem }))
}

// The subscription options of the relay's run: its own options without the relay's.
const runOptions = (options: Options): Subscriptions.RunOptions => {
  const {
    name: _n,
    stream: _s,
    create: _c,
    prefix: _p,
    subject: _f,
    maxInFlight: _m,
    recovery: _r,
    lifecycles: _l,
    ...rest
  } = options
  return { batchSize: 500, ...rest, onError: Subscriptions.Stop, transactional: false }
}

/**
 * Runs the relay until interrupted: makes sure the stream can take its messages, then relays every matching event
 * committed after its checkpoint (from `start` the first time), forever. Any number of processes may run it; one is
 * active per partition, the others stand by.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (
  options: Options
): Effect.Effect<never, RelayError, Subscriptions.Subscriptions | NatsClient.NatsClient> =>
  Effect.gen(function* () {
    const name = options.name ?? defaultName
    // Everything is checked before any I/O: the relay's options, then the subscription's.
    const reason =
      optionsProblem(options) ??
      Subscriptions.problem(name, runOptions(options)) ??
      SubscriptionLifecycle.reportingProblem(options)
    if (reason !== undefined) return yield* new Subscriptions.InvalidSubscription({ subscription: name, reason })
    const prefix = options.prefix ?? Subjects.defaultPrefix
    const subjectOf = options.subject ?? Subjects.byCategoryAndType(prefix)
    yield* JetStreamStream.ensure(options.stream, { create: options.create, prefix })
    const client = yield* NatsClient.NatsClient
    const subscriptions = yield* Subscriptions.Subscriptions
    const relayed = publishedBeforeCommit(publisher(options, client, subjectOf))
    const subscribe = (subscription: string, subscribeOptions?: Subscriptions.SubscribeOptions) =>
      Stream.map(subscriptions.subscribe(subscription, subscribeOptions), relayed)
    return yield* Subscriptions.makeRun(
      subscribe,
      options.recovery ?? { initialDelay: "200 millis", maxDelay: "30 seconds" },
      undefined,
      options.lifecycles ?? (yield* SubscriptionLifecycle.make)
    )(name, checkSubject(subjectOf), runOptions(options)).pipe(
      // A bad subject is the relay's own error, not a handler's.
      Effect.catchTag("HandlerFailed", (error) =>
        Effect.fail(error.cause instanceof Subjects.InvalidSubject ? error.cause : error)
      )
    )
  })

/**
 * The relay as a layer: the JetStream stream is checked (or created) while the layer is built, so a missing or unfit
 * stream fails the layer with its typed error; the relay then runs in the background for as long as the layer lives.
 * Should it stop later (a bad subject, a stored row that cannot be read), the error is logged.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<
  never,
  JetStreamStream.MissingStream | JetStreamStream.StreamMismatch | JetStreamStream.JetStreamFailure,
  Subscriptions.Subscriptions | NatsClient.NatsClient
> =>
  Layer.effectDiscard(
    Effect.andThen(
      JetStreamStream.ensure(options.stream, { create: options.create, prefix: options.prefix }),
      Effect.forkScoped(
        run(options).pipe(
          Effect.tapCause((cause) => Effect.logError("The NATS relay stopped", cause)),
          Effect.ignore
        )
      )
    )
  )

/**
 * The relay's settings from configuration: `EVENTLY_NATS_STREAM` (the JetStream stream, default `EVENTLY`),
 * `EVENTLY_NATS_PREFIX` (the subject prefix, default `evently`), `EVENTLY_NATS_CREATE` (create the stream when
 * missing, default false) and `EVENTLY_NATS_RELAY` (the subscription name, default `nats-relay`).
 *
 * @since 0.1.0
 * @category configuration
 */
export const config: Config.Config<Pick<Options, "name" | "stream" | "prefix" | "create">> = Config.all({
  name: Config.String("EVENTLY_NATS_RELAY").pipe(Config.withDefault(defaultName)),
  stream: Config.String("EVENTLY_NATS_STREAM").pipe(
    Config.withDefault("EVENTLY"),
    Config.map((name): JetStreamStream.Settings => ({ name }))
  ),
  prefix: Config.String("EVENTLY_NATS_PREFIX").pipe(Config.withDefault(Subjects.defaultPrefix)),
  create: Config.Boolean("EVENTLY_NATS_CREATE").pipe(Config.withDefault(false))
})

/**
 * {@link layer} with its stream, prefix, creation and name from {@link config}, and the rest from `options`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Omit<Options, "name" | "stream" | "prefix" | "create"> = {}
): Layer.Layer<
  never,
  | JetStreamStream.MissingStream
  | JetStreamStream.StreamMismatch
  | JetStreamStream.JetStreamFailure
  | Config.ConfigError,
  Subscriptions.Subscriptions | NatsClient.NatsClient
> => Layer.unwrap(Effect.map(config, (configured) => layer({ ...options, ...configured })))
