import { assert, layer } from "@effect/vitest"
import { Envelope, NatsClient, NatsRelay } from "@evently/nats"
import { EventStore, Subscriptions } from "@evently/store"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as SqlClient from "effect/sql/SqlClient"
import * as Stream from "effect/Stream"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import {
  freePort,
  layerNats,
  layerStore,
  natsUrl,
  ownServer,
  removedAfter,
  storedMessages,
  unique,
  waitForMessages
} from "./helpers.ts"

const append = (stream: string, count: number) =>
  Effect.gen(function* () {
    const store = yield* EventStore.EventStore
    for (let i = 0; i < count; i++) yield* store.append(stream, [{ type: "Happened", data: { i } }])
  }).pipe(Effect.orDie)

const eventIds = (category: string) =>
  Effect.gen(function* () {
    const store = yield* EventStore.EventStore
    return (yield* Stream.runCollect(store.readCategories([category]))).map((e) => e.eventId)
  }).pipe(Effect.orDie)

const storedIds = (stream: string) =>
  Effect.map(storedMessages(stream), (messages) =>
    messages.map((m) => {
      const decoded = Envelope.decode({ subject: m.subject, headers: m.header, data: m.data })
      if (decoded._tag === "Failure") throw decoded.failure
      return decoded.success.eventId
    })
  )

const checkpointOf = (name: string) =>
  Effect.gen(function* () {
    const subscriptions = yield* Subscriptions.Subscriptions
    const status = yield* subscriptions.status(name)
    return status.partitions[0]?.checkpoint.position
  }).pipe(Effect.orDie)

const workerPath = fileURLToPath(new URL("./relayWorker.ts", import.meta.url))

const startWorker = (env: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.callback<{ readonly pid: number; readonly kill: () => void; readonly midBatch: Promise<void> }>((resume) => {
      const child = spawn(process.execPath, [workerPath], {
        env: { ...process.env, ...env },
        stdio: ["ignore", "pipe", "inherit"]
      })
      let output = ""
      const midBatch = Promise.withResolvers<void>()
      child.stdout.on("data", (chunk: Buffer) => {
        output += chunk.toString()
        if (output.includes("mid-batch")) midBatch.resolve()
        if (output.includes("ready")) {
          resume(Effect.succeed({ pid: child.pid!, kill: () => child.kill("SIGKILL"), midBatch: midBatch.promise }))
        }
      })
      child.on("exit", (code) => resume(Effect.die(new Error(`relay worker exited early with ${code}`))))
    }),
    (worker) => Effect.sync(worker.kill)
  )

layer(layerStore, { excludeTestServices: true, timeout: "60 seconds" })("NatsRelay faults", (it) => {
  it.effect("no broker at start: NatsUnreachable says where it looked and what to start", () =>
    Effect.gen(function* () {
      const port = yield* freePort
      const error = yield* Effect.flip(
        Effect.scoped(Layer.build(NatsClient.layer({ servers: `nats://127.0.0.1:${port}`, timeout: "1 second" })))
      )
      assert.instanceOf(error, NatsClient.NatsUnreachable)
      assert.include(error.message, `nats://127.0.0.1:${port}`)
      assert.include(error.message, "nats-server -js")
      assert.include(error.message, "NATS_URL")
    })
  )

  it.effect("JetStream down: the checkpoint stays; restarted, it gets every event once", () =>
    Effect.gen(function* () {
      const server = yield* ownServer
      const client = yield* Layer.build(
        NatsClient.layer({ servers: server.url, reconnectTimeWait: "100 millis", apiTimeout: "1 second" })
      )
      const stream = unique("DOWN")
      const cat = unique("cat")
      const name = unique("relay")
      const subscriptions = yield* Subscriptions.Subscriptions
      yield* append(`${cat}-1`, 20)
      yield* Effect.forkScoped(
        Effect.provide(
          NatsRelay.run({
            name,
            stream: { name: stream },
            create: true,
            categories: [cat],
            batchSize: 10,
            recovery: { initialDelay: "100 millis", maxDelay: "500 millis" }
          }),
          client
        )
      )
      yield* subscriptions.waitUntilCaughtUp(name, { timeout: "20 seconds" })
      const before = yield* checkpointOf(name)

      yield* server.kill
      yield* append(`${cat}-1`, 15)
      yield* append(`${cat}-2`, 15)
      // Wait until the relay tried to publish the new events and failed (twice: it keeps trying).
      const failed = Metric.value(Metric.withAttributes(NatsRelay.failures, { stream }))
      while ((yield* failed).count < 2) yield* Effect.sleep("50 millis")
      assert.strictEqual(yield* checkpointOf(name), before, "the checkpoint did not move while JetStream was down")

      yield* server.start
      yield* subscriptions.waitUntilCaughtUp(name, { timeout: "30 seconds" })
      const stored = yield* Effect.provide(storedIds(stream), client)
      assert.strictEqual(stored.length, 50, "each event once: none lost, no duplicate")
      assert.deepStrictEqual(stored, yield* eventIds(cat))
    }).pipe(Effect.scoped)
  )

  it.effect("the broker killed while the relay catches up, and restarted: every event once, in order per stream", () =>
    Effect.gen(function* () {
      const server = yield* ownServer
      const client = yield* Layer.build(
        NatsClient.layer({ servers: server.url, reconnectTimeWait: "100 millis", apiTimeout: "1 second" })
      )
      const stream = unique("RESTART")
      const cat = unique("cat")
      const name = unique("relay")
      const subscriptions = yield* Subscriptions.Subscriptions
      for (let s = 0; s < 4; s++) yield* append(`${cat}-${s}`, 250)
      yield* Effect.forkScoped(
        Effect.provide(
          NatsRelay.run({
            name,
            stream: { name: stream },
            create: true,
            categories: [cat],
            batchSize: 50,
            recovery: { initialDelay: "100 millis", maxDelay: "500 millis" }
          }),
          client
        )
      )
      // Kill it once it holds a quarter of the log (the relay is mid-run: publishing, acks in flight).
      yield* Effect.provide(waitForMessages(stream, 250), client)
      yield* server.kill
      yield* server.start
      yield* subscriptions.waitUntilCaughtUp(name, { timeout: "30 seconds" })
      const stored = yield* Effect.provide(storedIds(stream), client)
      assert.strictEqual(stored.length, 1000, "each event once: none lost, no duplicate")
      assert.sameMembers(stored, yield* eventIds(cat))
      const store = yield* EventStore.EventStore
      const byId = new Map((yield* Stream.runCollect(store.readCategories([cat]))).map((e) => [e.eventId, e]))
      const versions = new Map<string, number>()
      for (const id of stored) {
        const event = byId.get(id)!
        assert.strictEqual(event.streamVersion, (versions.get(event.stream) ?? 0) + 1, `${event.stream} in order`)
        versions.set(event.stream, event.streamVersion)
      }
    }).pipe(Effect.scoped)
  )

  it.effect(
    "a relay process killed mid-batch: the standby republishes the batch and the stream holds each event once",
    () =>
      Effect.gen(function* () {
        const stream = unique("KILLED")
        const cat = unique("cat")
        const name = unique("relay")
        const sql = yield* SqlClient.SqlClient
        const [{ database }] = yield* sql<{ database: string }>`select current_database() as database`
        yield* append(`${cat}-1`, 50)
        const nats = yield* Layer.build(layerNats)
        yield* Effect.provide(removedAfter(stream), nats)
        const env = {
          EVENTLY_WORKER_DATABASE: database!,
          NATS_URL: natsUrl,
          RELAY_NAME: name,
          RELAY_STREAM: stream,
          RELAY_PREFIX: unique("ev"),
          RELAY_CATEGORY: cat
        }
        // The stream exists before the workers start (they do not create it).
        yield* Effect.provide(
          Effect.gen(function* () {
            const { manager } = yield* NatsClient.NatsClient
            yield* Effect.promise(() => manager.streams.add({ name: stream, subjects: [`${env.RELAY_PREFIX}.>`] }))
          }),
          nats
        )
        const active = yield* startWorker({ ...env, RELAY_BLOCK_AT: "15" })
        yield* Effect.promise(() => active.midBatch)
        // Events 1..14 of the first batch (1..20) are in JetStream; the batch is not committed.
        const ids = yield* eventIds(cat)
        const held = yield* Effect.provide(storedIds(stream), nats)
        assert.deepStrictEqual(held, ids.slice(0, 14))
        const checkpoint = yield* checkpointOf(name)
        assert.isTrue(checkpoint === undefined || checkpoint === 0n, `no checkpoint moved yet, not ${checkpoint}`)

        yield* startWorker(env)
        active.kill()
        yield* Effect.provide(waitForMessages(stream, 50), nats)
        const subscriptions = yield* Subscriptions.Subscriptions
        yield* subscriptions.waitUntilCaughtUp(name, { timeout: "20 seconds" })
        const stored = yield* Effect.provide(storedIds(stream), nats)
        assert.deepStrictEqual(stored, ids, "each event once, in order: the republished 14 were dropped as duplicates")
      }).pipe(Effect.scoped)
  )
})
