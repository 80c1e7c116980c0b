/**
 * `node packages/nats/bench/relay.ts [--events=N] [--json]`: the relay's throughput from commit to JetStream ack against a bare
 * publish loop of the same messages with the same client in the same run, and the commit-to-ack latency of live
 * events. Needs Postgres (DATABASE_URL / PG*; a database of its own, dropped at the end) and NATS (NATS_URL); its
 * JetStream streams are deleted at the end.
 *
 * - bare: the N messages the relay would send (same subjects, headers, bodies), published in order with at most 256
 *   awaiting their ack, timed until the last ack.
 * - relay: the relay started on a log of N committed events, timed until JetStream holds all N.
 * - latency: 2,000 events appended one by one by 8 writers while the relay is live; for each, the time JetStream
 *   stored it minus its `recordedAt` (the start of its append's transaction, so the append's own time is included).
 *
 * With `--json` it prints one JSON line instead of the table: what `pnpm bench --only=relay` reads.
 */
import { Envelope, NatsClient, NatsRelay, Subjects } from "@evently/nats"
import { PgEventStore, PgSchema, PgSubscriptions } from "@evently/postgres"
import { EventStore, Subscriptions } from "@evently/store"
import { TestDatabase } from "@evently/testing"
import { DeliverPolicy, type JsMsg, type PubAck } from "@nats-io/jetstream"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"

const events = Number(process.argv.find((a) => a.startsWith("--events="))?.slice("--events=".length) ?? 20_000)
const live = 2_000
const id = `${process.pid}`

const layer = Layer.mergeAll(
  PgEventStore.layer(),
  PgSubscriptions.layer({ lockRetryInterval: "100 millis" }),
  Layer.orDie(NatsClient.layer({ servers: process.env["NATS_URL"] ?? NatsClient.defaultServers }))
).pipe(Layer.provideMerge(PgSchema.layerMigrate.pipe(Layer.orDie, Layer.provideMerge(TestDatabase.layer()))))

// How many messages the stream holds (0 until the relay created it).
const held = (name: string) =>
  Effect.flatMap(NatsClient.NatsClient, ({ manager }) =>
    Effect.promise(() =>
      manager.streams.info(name).then(
        (info) => info.state.messages,
        () => 0
      )
    )
  )

const waitFor = (name: string, count: number) =>
  Effect.gen(function* () {
    while ((yield* held(name)) < count) yield* Effect.sleep("5 millis")
  })

const dropped = (name: string) =>
  Effect.flatMap(NatsClient.NatsClient, ({ manager }) =>
    Effect.addFinalizer(() => Effect.promise(() => manager.streams.delete(name).catch(() => false)))
  )

const seconds = (start: number) => (performance.now() - start) / 1000

const bare = Effect.fnUntraced(function* (recorded: ReadonlyArray<EventStore.RecordedEvent>) {
  const { jetstream, manager } = yield* NatsClient.NatsClient
  const name = `BENCH_BARE_${id}`
  yield* dropped(name)
  yield* Effect.promise(() => manager.streams.add({ name, subjects: [`bare${id}.>`] }))
  const subject = Subjects.byCategoryAndType(`bare${id}`)
  const messages = recorded.map((e) => Envelope.encode(e, subject(e)))
  const start = performance.now()
  yield* Effect.promise(async () => {
    const pending: Array<Promise<PubAck>> = []
    for (const m of messages) {
      if (pending.length >= 256) await pending.shift()
      pending.push(jetstream.publish(m.subject, m.payload, { headers: m.headers, expect: { streamName: name } }))
    }
    await Promise.all(pending)
  })
  return recorded.length / seconds(start)
})

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!

const program = Effect.gen(function* () {
  const store = yield* EventStore.EventStore
  const subscriptions = yield* Subscriptions.Subscriptions
  for (let i = 0; i < events / 50; i++) {
    yield* store.append(
      `bench-${i % 100}`,
      Array.from({ length: 50 }, (_, k) => ({ type: "Measured", data: { i, k, note: "a payload of a few fields" } }))
    )
  }
  const recorded = yield* Stream.runCollect(store.readAll())
  const bareRate = yield* bare(recorded)

  const name = `BENCH_RELAY_${id}`
  yield* dropped(name)
  const start = performance.now()
  const relay = yield* Effect.forkScoped(
    NatsRelay.run({ name: `bench-relay`, stream: { name }, create: true, prefix: `relay${id}` })
  )
  yield* waitFor(name, events)
  const relayRate = events / seconds(start)
  yield* subscriptions.waitUntilCaughtUp("bench-relay")

  yield* Effect.forEach(
    Array.from({ length: 8 }, (_, w) => w),
    (w) =>
      Effect.forEach(
        Array.from({ length: live / 8 }, (_, i) => i),
        (i) => store.append(`live-${w}`, [{ type: "Measured", data: { w, i } }]),
        { discard: true }
      ),
    { concurrency: 8, discard: true }
  )
  yield* waitFor(name, events + live)
  const { jetstream } = yield* NatsClient.NatsClient
  const consumer = yield* Effect.promise(() =>
    jetstream.consumers.get(name, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: events + 1 })
  )
  const stored: ReadonlyArray<JsMsg> = yield* Stream.runCollect(
    Stream.take(
      Stream.unwrap(
        Effect.map(
          Effect.acquireRelease(
            Effect.promise(() => consumer.consume()),
            (iterator) => Effect.promise(() => iterator.close())
          ),
          (iterator) => Stream.fromAsyncIterable(iterator, (error) => error)
        )
      ),
      live
    )
  )
  const latencies = stored
    .map((m) => {
      const decoded = Envelope.decode(m)
      if (decoded._tag === "Failure") throw decoded.failure
      return m.time.getTime() - DateTime.toEpochMillis(decoded.success.recordedAt)
    })
    .sort((a, b) => a - b)
  yield* Fiber.interrupt(relay)

  const p50 = percentile(latencies, 0.5)
  const p99 = percentile(latencies, 0.99)
  if (process.argv.includes("--json")) {
    console.log(JSON.stringify({ events, live, bareRate, relayRate, p50, p99 }))
    return
  }
  console.log(`| ${events} events | events/s |\n| --- | ---: |`)
  console.log(`| bare publish loop (256 in flight) | ${bareRate.toFixed(0)} |`)
  console.log(
    `| relay, commit to ack | ${relayRate.toFixed(0)} (${((relayRate / bareRate) * 100).toFixed(0)}% of bare) |`
  )
  console.log(`\ncommit-to-ack latency of ${live} live events (8 writers): p50 ${p50} ms, p99 ${p99} ms`)
})

Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(layer))).catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
