import { assert, layer } from "@effect/vitest"
import { EventStore } from "@evently/store"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { child, databaseName, advisoryLocksByRunner, layerStore, lineOf, runner, unique } from "./helpers.ts"

const shards = 60

/** Runs a client process to its end and returns what it reports. */
const clientRun = (database: string, prefix: string, env: Record<string, string>) =>
  child("./fixtures/clientProcess.ts", { EVENTLY_WORKER_DATABASE: database, CLUSTER_PREFIX: prefix, ...env })

interface ClientResult {
  readonly handled: number
  readonly duplicates: number
  readonly maxAttempts: number
  readonly deliveryFailures: number
  readonly errors: Record<string, number>
}

const resultOf = (line: string): ClientResult => JSON.parse(line.slice("result ".length)) as ClientResult

/** Each stream's events as (command id, amount), read back from the store. */
const eventsByStream = (category: string) =>
  Effect.gen(function* () {
    const store = yield* EventStore.EventStore
    const events = yield* Stream.runCollect(store.readCategories([category]))
    const byStream = new Map<string, Array<{ readonly commandId: string; readonly amount: number }>>()
    for (const event of events) {
      const list = byStream.get(event.stream) ?? []
      list.push({ commandId: event.metadata.causationId!, amount: (event.data as { amount: number }).amount })
      byStream.set(event.stream, list)
    }
    return byStream
  }).pipe(Effect.orDie)

layer(layerStore, { excludeTestServices: true, timeout: "240 seconds" })("cluster of runner processes", (it) => {
  it.effect(
    "10,000 commands to 1,000 streams through 3 runners, one killed -9 midway: its shards move, each command is applied once",
    () =>
      Effect.gen(function* () {
        const database = yield* databaseName
        const prefix = unique("c")
        // The first runner creates the cluster's tables; the others join once they exist.
        const first = yield* runner(database, prefix)
        // The second SIGKILLs itself right after its 1,000th append, before replying: a command applied, reply lost.
        const [second, third] = yield* Effect.all(
          [runner(database, prefix, { DIE_AFTER_APPENDS: "1000" }), runner(database, prefix)],
          { concurrency: 2 }
        )
        const client = yield* clientRun(database, prefix, {
          COMMANDS: "10000",
          STREAMS: "1000",
          CONCURRENCY: "64",
          CLIENT_ID: "spread",
          STREAM_PREFIX: "counter"
        })
        yield* lineOf(client, "progress 250")
        const before = yield* advisoryLocksByRunner
        assert.isAbove(before[second.applicationName] ?? 0, 0)
        assert.strictEqual(yield* Effect.promise(() => second.exited), null) // killed by a signal
        const finishedBeforeKill = client.output().includes("result")
        const result = resultOf(yield* lineOf(client, "result"))
        assert.strictEqual(finishedBeforeKill, false)

        assert.deepStrictEqual(result.errors, {})
        assert.strictEqual(result.handled, 10_000)
        // The command whose reply was lost was sent again, and the new owner answered with its first handling.
        assert.isAtLeast(result.duplicates, 1)

        // Every command exactly once: each stream holds its 10 commands' events, once each, with their amounts.
        const byStream = yield* eventsByStream("counter")
        assert.strictEqual(byStream.size, 1000)
        for (const [stream, events] of byStream) {
          const index = Number(stream.slice("counter-".length))
          const expected = Array.from({ length: 10 }, (_, k) => index + k * 1000)
          assert.deepStrictEqual(
            events.map((event) => event.commandId).toSorted(),
            expected.map((i) => `spread-${i}`).toSorted()
          )
          assert.strictEqual(
            events.reduce((sum, event) => sum + event.amount, 0),
            expected.reduce((sum, i) => sum + i + 1, 0)
          )
        }

        // The killed runner's shards moved to the two left: they hold every shard lock between them.
        const after = yield* advisoryLocksByRunner
        assert.strictEqual(after[second.applicationName] ?? 0, 0)
        assert.isAtLeast((after[first.applicationName] ?? 0) + (after[third.applicationName] ?? 0), shards)
      }).pipe(Effect.scoped),
    240_000
  )

  it.effect(
    "32 concurrent commands on one stream from 4 client processes: no retries exhausted, each applied once",
    () =>
      Effect.gen(function* () {
        const database = yield* databaseName
        const prefix = unique("h")
        yield* runner(database, prefix)
        yield* runner(database, prefix)
        const clients = yield* Effect.forEach([0, 1, 2, 3], (n) =>
          clientRun(database, prefix, {
            COMMANDS: "8",
            STREAMS: "1",
            CONCURRENCY: "8",
            CLIENT_ID: `hot${n}`,
            STREAM_PREFIX: "hot"
          })
        )
        const results = yield* Effect.forEach(clients, (started) => Effect.map(lineOf(started, "result"), resultOf), {
          concurrency: 4
        })
        for (const result of results) {
          assert.deepStrictEqual(result.errors, {})
          assert.strictEqual(result.handled, 8)
          // The stream's owner runs its commands one at a time: none ever found the stream changed under it.
          assert.strictEqual(result.maxAttempts, 1)
        }
        const events = (yield* eventsByStream("hot")).get("hot-0") ?? []
        assert.strictEqual(events.length, 32)
        assert.strictEqual(new Set(events.map((event) => event.commandId)).size, 32)
      }).pipe(Effect.scoped),
    120_000
  )
})
