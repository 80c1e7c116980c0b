import { assert, layer } from "@effect/vitest"
import { Envelope, NatsClient, NatsRelay } from "@evently/nats"
import { EventStore, Subscriptions } from "@evently/store"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { layerNats, layerStore, readMessages, removedAfter, unique, waitForMessages } from "./helpers.ts"

// The size by default; EVENTLY_NATS_EVENTS=2000 for a quick run.
const total = Number(process.env["EVENTLY_NATS_EVENTS"] ?? 20_000)
const writers = 8
const perAppend = 10
const streamsPerWriter = 5

layer(Layer.mergeAll(layerStore, layerNats), { excludeTestServices: true, timeout: "60 seconds" })(
  "NatsRelay under load",
  (it) => {
    it.effect(
      `${total} events from ${writers} writers, relayed by two partitions while the relay's connection is cut three times: each once, in order per stream`,
      () =>
        Effect.gen(function* () {
          const stream = unique("LOAD")
          const prefix = unique("ev")
          yield* removedAfter(stream)
          const cat = unique("load")
          const name = unique("relay")
          const store = yield* EventStore.EventStore
          const subscriptions = yield* Subscriptions.Subscriptions
          const { connection } = yield* NatsClient.NatsClient
          yield* Effect.forkScoped(
            NatsRelay.run({
              name,
              stream: { name: stream },
              create: true,
              prefix,
              categories: [cat],
              partitions: 2,
              recovery: { initialDelay: "50 millis", maxDelay: "500 millis" }
            })
          )
          const appendsPerWriter = total / writers / perAppend
          const writer = (w: number) =>
            Effect.forEach(
              Array.from({ length: appendsPerWriter }, (_, i) => i),
              (i) =>
                store.append(
                  `${cat}-${w}_${i % streamsPerWriter}`,
                  Array.from({ length: perAppend }, (_, k) => ({ type: "Counted", data: { w, i, k } }))
                ),
              { discard: true }
            )
          const writing = yield* Effect.forkScoped(
            Effect.forEach(
              Array.from({ length: writers }, (_, w) => w),
              writer,
              { concurrency: writers, discard: true }
            )
          )
          // Cut the relay's connection when JetStream holds a quarter, a half and three quarters of the events.
          for (const share of [0.25, 0.5, 0.75]) {
            yield* waitForMessages(stream, Math.floor(total * share))
            yield* Effect.promise(() => connection.reconnect())
          }
          yield* Effect.orDie(Fiber.join(writing))
          yield* subscriptions.waitUntilCaughtUp(name, { timeout: "40 seconds" })

          const held = yield* readMessages(stream, total)
          const events = held.map((m) => {
            const decoded = Envelope.decode(m)
            if (decoded._tag === "Failure") throw decoded.failure
            return decoded.success
          })
          const info = yield* Effect.flatMap(NatsClient.NatsClient, ({ manager }) =>
            Effect.promise(() => manager.streams.info(stream))
          )
          assert.strictEqual(info.state.messages, total, "JetStream holds exactly one message per event")
          const appended = yield* Stream.runCollect(store.readCategories([cat]))
          assert.strictEqual(new Set(events.map((e) => e.eventId)).size, total, "no event twice")
          assert.deepStrictEqual(
            new Set(events.map((e) => e.eventId)),
            new Set(appended.map((e) => e.eventId)),
            "no event missing"
          )
          const versions = new Map<string, number>()
          for (const event of events) {
            const last = versions.get(event.stream) ?? 0
            assert.strictEqual(event.streamVersion, last + 1, `${event.stream} in order`)
            versions.set(event.stream, event.streamVersion)
          }
        }).pipe(Effect.scoped)
    )
  }
)
