import type * as EventStore from "@evently/store/EventStore"
import * as Subscriptions from "@evently/store/Subscriptions"
import type { JetStreamClient, PubAck } from "@nats-io/jetstream"
import * as Effect from "effect/Effect"
import * as Envelope from "../Envelope.ts"
import type * as Subjects from "../Subjects.ts"

type Outcome =
  | { readonly ok: true; readonly ack: PubAck }
  | { readonly ok: false; readonly error: unknown; readonly event: EventStore.RecordedEvent; readonly subject: string }

/** What one batch's publish came to. */
export interface Published {
  readonly acked: number
  readonly duplicates: number
}

const failure = (outcome: Extract<Outcome, { ok: false }>) =>
  new Subscriptions.SubscriptionStorageError({
    operation: `publish to JetStream (event ${outcome.event.eventId} at position ${outcome.event.position} on ${outcome.subject})`,
    cause: outcome.error
  })

const lostConnection = (event: EventStore.RecordedEvent) =>
  new Subscriptions.SubscriptionStorageError({
    operation: `publish to JetStream (event ${event.eventId} at position ${event.position})`,
    cause: new Error("the connection to NATS was lost during the batch; it is published again from its start")
  })

/**
 * Publishes the events in order on one connection (so JetStream stores them in that order), at most `maxInFlight`
 * unacknowledged at a time, and succeeds once every one is acknowledged by `stream`. The first failed publish fails
 * the whole batch (the caller must not commit it); the publishes still in flight then settle unobserved, never as
 * unhandled rejections.
 */
export const publishBatch = Effect.fnUntraced(function* (
  js: JetStreamClient,
  disconnects: () => number,
  stream: string,
  events: ReadonlyArray<EventStore.RecordedEvent>,
  subjectOf: Subjects.SubjectOf,
  maxInFlight: number,
  traceParent: string | undefined,
  onSent: (count: number) => Effect.Effect<void>
) {
  const pending: Array<Promise<Outcome>> = []
  let acked = 0
  let duplicates = 0
  const settle = Effect.fnUntraced(function* () {
    const outcome = yield* Effect.promise(() => pending.shift()!)
    if (!outcome.ok) return yield* failure(outcome)
    acked++
    if (outcome.ack.duplicate) duplicates++
  })
  const connection = disconnects()
  for (const event of events) {
    if (pending.length >= maxInFlight) yield* settle()
    // After a lost connection, what was sent before it may be lost while what is sent now would land: stop, so that
    // JetStream only ever holds a prefix of the batch, and the batch is published again from its start.
    if (disconnects() !== connection) return yield* lostConnection(event)
    const subject = subjectOf(event)
    const message = Envelope.encode(event, subject, traceParent)
    pending.push(
      yield* Effect.sync(() =>
        js.publish(subject, message.payload, { headers: message.headers, expect: { streamName: stream } }).then(
          (ack): Outcome => ({ ok: true, ack }),
          (error: unknown): Outcome => ({ ok: false, error, event, subject })
        )
      )
    )
    yield* onSent(1)
  }
  while (pending.length > 0) yield* settle()
  return { acked, duplicates } satisfies Published
})
