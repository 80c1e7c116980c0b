import { assert, layer } from "@effect/vitest"
import { NatsClient } from "@evently/nats"
import { PgEventStore, PgSchema } from "@evently/postgres"
import { EventStore } from "@evently/store"
import { TestDatabase } from "@evently/testing"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import { databaseUrl, run } from "./processes.ts"

const database = Layer.provideMerge(PgSchema.layerMigrate, TestDatabase.layer())
const services = Layer.merge(
  PgEventStore.layer().pipe(Layer.provideMerge(database)),
  NatsClient.layer({ servers: process.env["NATS_URL"] ?? NatsClient.defaultServers })
)

/** A JetStream stream and subject prefix of this run's own, deleted when the scope closes. */
const ownStream = Effect.gen(function* () {
  const { manager } = yield* NatsClient.NatsClient
  const id = crypto.randomUUID().slice(0, 8)
  const env = { EVENTLY_NATS_STREAM: `CATS_TEST_${id}`, EVENTLY_NATS_PREFIX: `cats${id}` }
  yield* Effect.addFinalizer(() =>
    Effect.promise(() => manager.streams.delete(env.EVENTLY_NATS_STREAM).catch(() => false))
  )
  return env
})

/** The example's durable consumer, once none of its deliveries awaits an ack (within 10 s). */
const settled = (stream: string) =>
  Effect.flatMap(NatsClient.NatsClient, ({ manager }) =>
    Effect.promise(() => manager.consumers.info(stream, "cats-consume")).pipe(
      Effect.repeat({ until: (info) => info.num_ack_pending === 0, schedule: Schedule.spaced("50 millis") }),
      Effect.timeout("10 seconds")
    )
  )

/** The durable consumer once no pull request waits on it: a killed client's ends with its connection or expiry. */
const noPullWaiting = (stream: string) =>
  Effect.flatMap(NatsClient.NatsClient, ({ manager }) =>
    Effect.promise(() => manager.consumers.info(stream, "cats-consume")).pipe(
      Effect.repeat({ until: (info) => info.num_waiting === 0, schedule: Schedule.spaced("50 millis") }),
      Effect.timeout("40 seconds")
    )
  )

layer(services, { excludeTestServices: true, timeout: "60 seconds" })("cats on NATS (real processes)", (it) => {
  it.effect(
    "relay publishes the cats' events; consume prints them, live ones too, and a restarted consume goes on after the last it acked",
    () =>
      Effect.gen(function* () {
        const es = yield* EventStore.EventStore
        const url = yield* databaseUrl
        const env = yield* ownStream
        const prefix = env.EVENTLY_NATS_PREFIX
        yield* es.append("cat-tom", [
          { type: "Adopted", data: { name: "tom" } },
          { type: "Fed", data: { food: "tuna" } }
        ])
        yield* es.append("dog-rex", [{ type: "Adopted", data: { name: "rex" } }])

        const relay = yield* run("relay", [], url, env)
        yield* relay.waitFor(`Relaying the cats' events to JetStream stream ${env.EVENTLY_NATS_STREAM}`)
        const consume = yield* Effect.scoped(
          Effect.gen(function* () {
            const first = yield* run("consume", [], url, env)
            yield* first.waitFor(`cat-tom v1 Adopted {"name":"tom"} (${prefix}.cat.Adopted)`)
            yield* first.waitFor(`cat-tom v2 Fed {"food":"tuna"} (${prefix}.cat.Fed)`)
            yield* es.append("cat-felix", [{ type: "Napped", data: { minutes: 15 } }])
            yield* first.waitFor(`cat-felix v1 Napped {"minutes":15} (${prefix}.cat.Napped)`)
            // Killed only once it acked what it printed (else JetStream would deliver that one again, at least once).
            yield* settled(env.EVENTLY_NATS_STREAM)
            return first.output
          })
        )
        assert.notInclude(consume.stdout, "rex", "only the cats are relayed")

        // Killed above; its durable consumer remembers what it acked. Its last pull request must be gone from the
        // server first: JetStream would hand the next event to it, and deliver it again only after the ack wait.
        yield* noPullWaiting(env.EVENTLY_NATS_STREAM)
        yield* es.append("cat-tom", [{ type: "Renamed", data: { name: "thomas" } }])
        const second = yield* run("consume", [], url, env)
        yield* second.waitFor(`cat-tom v3 Renamed {"name":"thomas"} (${prefix}.cat.Renamed)`)
        assert.notInclude(second.output.stdout, "Adopted")
        assert.notInclude(second.output.stdout, "Napped")
        // Each printed event was acked: none awaits its ack, none was delivered twice, the floor is the 4th message.
        const info = yield* settled(env.EVENTLY_NATS_STREAM)
        assert.strictEqual(info.ack_floor.stream_seq, 4)
        assert.strictEqual(info.num_redelivered, 0)
        assert.strictEqual(relay.output.code, undefined, "the relay keeps running")
      }).pipe(Effect.scoped),
    120_000
  )
})
