import { assert, layer } from "@effect/vitest"
import { Envelope, JetStreamStream, NatsClient, NatsConsumer, NatsRelay, Subjects } from "@evently/nats"
import { EventCodec, EventStore, SubscriptionLifecycle, Subscriptions } from "@evently/store"
import * as ConfigProvider from "effect/ConfigProvider"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { layerNats, layerStore, removedAfter, storedMessages, unique, waitForMessages } from "./helpers.ts"

const Cat = Schema.TaggedUnion({ Adopted: { name: Schema.String }, Fed: { food: Schema.String } })
const codec = EventCodec.make(Cat)

const decoded = (stream: string) =>
  Effect.map(storedMessages(stream), (messages) =>
    messages.map((m) => {
      const result = Envelope.decode({ subject: m.subject, headers: m.header, data: m.data })
      if (result._tag === "Failure") throw result.failure
      return { subject: m.subject, headers: m.header, event: result.success }
    })
  )

// Appends `perStream` events to each of `streams`, interleaved one append at a time, with correlation metadata.
const appendInterleaved = (streams: ReadonlyArray<string>, perStream: number) =>
  Effect.gen(function* () {
    const store = yield* EventStore.EventStore
    for (let i = 0; i < perStream; i++) {
      for (const stream of streams) {
        const event = i === 0 ? { _tag: "Adopted" as const, name: stream } : { _tag: "Fed" as const, food: `meal ${i}` }
        const encoded = yield* Effect.orDie(codec.encode(event))
        yield* store.append(stream, [{ ...encoded }], {
          metadata: { correlationId: `corr ${stream}`, causationId: `cause/${i}` }
        })
      }
    }
  }).pipe(Effect.orDie)

// The relay's error for these options (its stream "S" does not exist on the broker: a check after I/O would say so).
const refused = (options: Partial<NatsRelay.Options>) =>
  Effect.flip(NatsRelay.run({ name: "relay", stream: { name: "S" }, ...options }))

const comparable = (e: EventStore.RecordedEvent) => ({ ...e, recordedAt: DateTime.toEpochMillis(e.recordedAt) })

layer(Layer.mergeAll(layerStore, layerNats), { excludeTestServices: true, timeout: "60 seconds" })(
  "NatsRelay",
  (it) => {
    it.effect("publishes every appended event once, in order per stream, with the event's headers", () =>
      Effect.gen(function* () {
        const stream = unique("RELAY")
        yield* removedAfter(stream)
        const prefix = unique("ev")
        const name = unique("relay")
        const [cat, dog] = [unique("cat"), unique("dog")]
        const streams = [`${cat}-1`, `${cat}-2`, `${dog}-1`]
        const lifecycles = yield* SubscriptionLifecycle.make
        yield* appendInterleaved(streams, 10)
        const subscriptions = yield* Subscriptions.Subscriptions
        yield* Effect.forkScoped(
          NatsRelay.run({
            name,
            stream: { name: stream },
            create: true,
            prefix,
            categories: [cat, dog],
            batchSize: 7,
            maxInFlight: 3,
            lifecycles
          })
        )
        yield* subscriptions.waitUntilCaughtUp(name, { timeout: "20 seconds" })
        const store = yield* EventStore.EventStore
        const appended = yield* Stream.runCollect(store.readCategories([cat, dog]))
        const relayed = yield* decoded(stream)

        // Each event once, in commit order (one writer here), carrying what the store holds.
        assert.deepStrictEqual(
          relayed.map((m) => m.event.eventId),
          appended.map((e) => e.eventId)
        )
        assert.deepStrictEqual(
          relayed.map((m) => comparable(m.event)),
          appended.map(comparable)
        )
        for (const { subject, headers, event } of relayed) {
          assert.strictEqual(subject, `${prefix}.${event.category}.${event.type}`)
          assert.strictEqual(headers.get("Nats-Msg-Id"), event.eventId)
          assert.strictEqual(headers.get("Evently-Stream"), event.stream)
          assert.strictEqual(headers.get("Evently-Stream-Version"), String(event.streamVersion))
          assert.strictEqual(headers.get("Evently-Position"), String(event.position))
          assert.strictEqual(headers.get("Evently-Schema-Version"), "1")
          assert.match(headers.get("traceparent"), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)
          assert.strictEqual(headers.get("Evently-Correlation-Id"), encodeURIComponent(`corr ${event.stream}`))
          assert.strictEqual(
            headers.get("Evently-Causation-Id"),
            encodeURIComponent(`cause/${event.streamVersion - 1}`)
          )
        }
        for (const s of streams) {
          const versions = relayed.filter((m) => m.event.stream === s).map((m) => m.event.streamVersion)
          assert.deepStrictEqual(
            versions,
            Array.from({ length: 10 }, (_, i) => i + 1)
          )
        }
        // Its lifecycle went to the lifecycles it was given: it reports that it is live.
        const live = yield* lifecycles.events(name).pipe(
          Stream.filter((event) => event.phase._tag === "CaughtUp"),
          Stream.take(1),
          Stream.runCollect,
          Effect.timeoutOption("10 seconds")
        )
        assert.strictEqual(live._tag, "Some")
        const acked = yield* Metric.value(Metric.withAttributes(NatsRelay.acked, { stream }))
        assert.strictEqual(acked.count, 30)
      }).pipe(Effect.scoped)
    )

    it.effect("a message JetStream already holds (same Nats-Msg-Id) is not stored again", () =>
      Effect.gen(function* () {
        const stream = unique("DEDUP")
        yield* removedAfter(stream)
        const prefix = unique("ev")
        const name = unique("relay")
        const cat = unique("cat")
        yield* appendInterleaved([`${cat}-a`, `${cat}-b`], 5)
        const store = yield* EventStore.EventStore
        const appended = yield* Stream.runCollect(store.readCategories([cat]))
        // A relay that published the first four events and died before its checkpoint moved.
        yield* JetStreamStream.ensure({ name: stream }, { create: true, prefix })
        const { jetstream } = yield* NatsClient.NatsClient
        for (const event of appended.slice(0, 4)) {
          const message = Envelope.encode(event, Subjects.byCategoryAndType(prefix)(event))
          yield* Effect.promise(() => jetstream.publish(message.subject, message.payload, { headers: message.headers }))
        }
        const subscriptions = yield* Subscriptions.Subscriptions
        yield* Effect.forkScoped(NatsRelay.run({ name, stream: { name: stream }, prefix, categories: [cat] }))
        yield* subscriptions.waitUntilCaughtUp(name, { timeout: "20 seconds" })
        const relayed = yield* decoded(stream)
        assert.deepStrictEqual(
          relayed.map((m) => m.event.eventId),
          appended.map((e) => e.eventId)
        )
        assert.strictEqual((yield* Metric.value(Metric.withAttributes(NatsRelay.duplicates, { stream }))).count, 4)
      }).pipe(Effect.scoped)
    )

    it.effect("a missing stream without create is a MissingStream naming it and its subjects", () =>
      Effect.gen(function* () {
        const stream = unique("MISSING")
        yield* removedAfter(stream)
        const exit = yield* Effect.exit(
          NatsRelay.run({ name: unique("relay"), stream: { name: stream }, prefix: "nowhere" })
        )
        assert.isTrue(Exit.isFailure(exit))
        const error = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
        assert.strictEqual(error?._tag, "Fail")
        const failure = error?._tag === "Fail" ? error.error : undefined
        assert.instanceOf(failure, JetStreamStream.MissingStream)
        assert.include(failure.message, `'${stream}' does not exist`)
        assert.include(failure.message, "nowhere.>")
      }).pipe(Effect.scoped)
    )

    it.effect("a stream that does not take the relay's subjects is a StreamMismatch saying which", () =>
      Effect.gen(function* () {
        const stream = unique("OTHER")
        yield* removedAfter(stream)
        yield* JetStreamStream.ensure({ name: stream, subjects: [`${stream}.>`] }, { create: true })
        const error = yield* Effect.flip(
          NatsRelay.run({ name: unique("relay"), stream: { name: stream }, prefix: "elsewhere" })
        )
        assert.instanceOf(error, JetStreamStream.StreamMismatch)
        assert.include(error.message, "it does not take subject elsewhere.>")
      }).pipe(Effect.scoped)
    )

    it.effect("a subject function that returns a wildcard stops the relay with InvalidSubject", () =>
      Effect.gen(function* () {
        const stream = unique("BADSUBJ")
        yield* removedAfter(stream)
        const prefix = unique("ev")
        const bad = unique("bad")
        yield* appendInterleaved([`${bad}-1`], 1)
        const error = yield* Effect.flip(
          NatsRelay.run({
            name: unique("relay"),
            stream: { name: stream },
            create: true,
            prefix,
            categories: [bad],
            subject: () => `${prefix}.*`
          })
        )
        assert.instanceOf(error, Subjects.InvalidSubject)
        assert.include(error.message, "wildcard")
      }).pipe(Effect.scoped)
    )

    it.effect("the consumer stream decodes typed events, redelivers a nak and keeps an ack", () =>
      Effect.gen(function* () {
        const stream = unique("CONSUME")
        yield* removedAfter(stream)
        const prefix = unique("ev")
        const name = unique("relay")
        const cat = unique("cat")
        const [x, y] = [`${cat}-x`, `${cat}-y`]
        yield* appendInterleaved([x, y], 3)
        yield* Effect.forkScoped(
          NatsRelay.run({ name, stream: { name: stream }, create: true, prefix, categories: [cat] })
        )
        yield* waitForMessages(stream, 6)
        const durable = unique("svc")
        const options = { stream, durable, filterSubjects: Subjects.filter({ prefix, eventTypes: ["Adopted"] }) }
        // First delivery of the first Adopted: nak it; it comes back (delivery 2) before or after the other one.
        const seen = yield* NatsConsumer.typed(codec, options).pipe(
          Stream.mapEffect((d) =>
            Effect.as(d.deliveryCount === 1 && d.event.stream === x ? d.nak() : d.ack, {
              stream: d.event.stream as string,
              event: d.event.event,
              deliveryCount: d.deliveryCount
            })
          ),
          Stream.take(3),
          Stream.runCollect
        )
        assert.sameDeepMembers(
          [...seen],
          [
            { stream: x, event: Cat.cases.Adopted.make({ name: x }), deliveryCount: 1 },
            { stream: x, event: Cat.cases.Adopted.make({ name: x }), deliveryCount: 2 },
            { stream: y, event: Cat.cases.Adopted.make({ name: y }), deliveryCount: 1 }
          ]
        )
        const { manager } = yield* NatsClient.NatsClient
        const info = yield* Effect.promise(() => manager.consumers.info(stream, durable))
        assert.strictEqual(info.num_pending, 0)
        assert.strictEqual(info.num_ack_pending, 0)

        // The same durable with other settings: updated in place, so it goes on after what was acked.
        const z = `${cat}-z`
        yield* appendInterleaved([z], 1)
        const [next] = yield* NatsConsumer.events({ ...options, maxAckPending: 5 }).pipe(
          Stream.mapEffect((d) => Effect.as(d.ack, d)),
          Stream.take(1),
          Stream.runCollect
        )
        assert.strictEqual(next?.event.stream, z)
        assert.strictEqual(next?.deliveryCount, 1)
        const updated = yield* Effect.promise(() => manager.consumers.info(stream, durable))
        assert.strictEqual(updated.config.max_ack_pending, 5)
      }).pipe(Effect.scoped)
    )

    it.effect(
      "layerConfig: stream, prefix, creation and name from the environment; the relay runs while the layer lives",
      () =>
        Effect.gen(function* () {
          const stream = unique("CONFIGURED")
          const prefix = unique("ev")
          const name = unique("relay")
          const cat = unique("cfg")
          yield* removedAfter(stream)
          yield* appendInterleaved([`${cat}-1`], 4)
          const env = {
            EVENTLY_NATS_STREAM: stream,
            EVENTLY_NATS_PREFIX: prefix,
            EVENTLY_NATS_CREATE: "true",
            EVENTLY_NATS_RELAY: name
          }
          yield* Layer.build(
            NatsRelay.layerConfig({ categories: [cat] }).pipe(
              Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env })))
            )
          )
          const subscriptions = yield* Subscriptions.Subscriptions
          yield* subscriptions.waitUntilCaughtUp(name, { timeout: "20 seconds" })
          const relayed = yield* decoded(stream)
          assert.deepStrictEqual(
            relayed.map((m) => m.subject),
            Array.from({ length: 4 }, (_, i) => `${prefix}.${cat}.${i === 0 ? "Adopted" : "Fed"}`)
          )
        }).pipe(Effect.scoped)
    )

    it.effect("layer: a missing stream fails the layer's construction with MissingStream", () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(
          Layer.build(NatsRelay.layer({ name: unique("relay"), stream: { name: unique("ABSENT") }, prefix: "absent" }))
        )
        assert.instanceOf(error, JetStreamStream.MissingStream)
      }).pipe(Effect.scoped)
    )

    it.effect("a message that is not an evently event ends the consumer stream with InvalidEnvelope, unacked", () =>
      Effect.gen(function* () {
        const stream = unique("FOREIGN")
        const prefix = unique("ev")
        yield* removedAfter(stream)
        yield* JetStreamStream.ensure({ name: stream }, { create: true, prefix })
        const { jetstream, manager } = yield* NatsClient.NatsClient
        yield* Effect.promise(() => jetstream.publish(`${prefix}.other.Thing`, new TextEncoder().encode("{}")))
        const durable = unique("svc")
        const error = yield* Effect.flip(Stream.runDrain(NatsConsumer.events({ stream, durable, ackWait: "1 minute" })))
        assert.instanceOf(error, Envelope.InvalidEnvelope)
        assert.include(error.message, "Nats-Msg-Id is missing")
        const info = yield* Effect.promise(() => manager.consumers.info(stream, durable))
        assert.strictEqual(info.num_ack_pending, 1, "left for a later delivery, not acked")
      }).pipe(Effect.scoped)
    )

    it.effect("options that cannot work are an InvalidSubscription saying which, before any I/O", () =>
      Effect.gen(function* () {
        const inFlight = yield* refused({ maxInFlight: 0 })
        assert.instanceOf(inFlight, Subscriptions.InvalidSubscription)
        assert.include(inFlight.message, "maxInFlight must be a whole number from 1 to 65536, not 0")
        assert.include((yield* refused({ prefix: "a.*" })).message, "wildcard")
        assert.include((yield* refused({ stream: { name: "a.b" } })).message, "JetStream stream name")
        assert.include((yield* refused({ batchSize: 0 })).message, "batchSize")
      })
    )
  }
)
