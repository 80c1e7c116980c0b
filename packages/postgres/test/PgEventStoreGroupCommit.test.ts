import { assert, layer } from "@effect/vitest"
import { PgEventStore, PgSchema } from "@evently/postgres"
import { EventStore, ExpectedVersion } from "@evently/store"
import { TestDatabase } from "@evently/testing"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Schedule from "effect/Schedule"
import * as SqlClient from "effect/sql/SqlClient"
import * as Stream from "effect/Stream"
import { TestClock } from "effect/testing"

const database = TestDatabase.layer({ maxConnections: 8 })
const migrated = Layer.provideMerge(PgSchema.layerMigrate, database)
const store = PgEventStore.layer().pipe(Layer.provideMerge(migrated))

const unique = () => crypto.randomUUID().replaceAll("-", "").slice(0, 12)

/**
 * A store of its own, built with a metric registry of its own, and a way to read its group-commit metrics.
 */
const storeWithMetrics = (options: PgEventStore.Options = {}) =>
  Effect.gen(function* () {
    const registry: Metric.MetricRegistry = new Map()
    const es = yield* Effect.provideService(PgEventStore.make(options), Metric.MetricRegistry, registry)
    const metrics = Effect.gen(function* () {
      return {
        flushes: (yield* Metric.value(PgEventStore.flushes)).count,
        sizes: yield* Metric.value(PgEventStore.batchSizes),
        splits: (yield* Metric.value(PgEventStore.splits)).count
      }
    }).pipe(Effect.provideService(Metric.MetricRegistry, registry))
    return { es, metrics }
  })

const versionsOf = (stream: string) =>
  Effect.gen(function* () {
    const es = yield* EventStore.EventStore
    const events = yield* Stream.runCollect(es.readStream(stream))
    return [...events].map((e) => e.streamVersion)
  })

/** Polls until a session of this test's database waits on a lock (a batch blocked by the caller's transaction). */
const untilSomeoneWaitsOnALock = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ readonly waiting: number }>`
    select count(*)::int4 as waiting from pg_stat_activity
    where datname = current_database() and wait_event_type = 'Lock'`
  if (rows[0]!.waiting === 0) return yield* Effect.fail("not waiting yet")
}).pipe(Effect.retry(Schedule.spaced("20 millis")))

/** The expectation of append i (streams 0..149 are at version 1, 150..199 absent) and whether it holds. */
const expectationOf = (i: number): [ExpectedVersion.ExpectedVersion, boolean] => {
  if (i >= 150) {
    switch (i % 4) {
      case 0:
        return [ExpectedVersion.NoStream, true]
      case 1:
        return [ExpectedVersion.Any, true]
      case 2:
        return [ExpectedVersion.Exact(0), true]
      default:
        return [ExpectedVersion.StreamExists, false]
    }
  }
  switch (i % 6) {
    case 0:
      return [ExpectedVersion.Exact(1), true]
    case 1:
      return [ExpectedVersion.Exact(4), false]
    case 2:
      return [ExpectedVersion.NoStream, false]
    case 3:
      return [ExpectedVersion.StreamExists, true]
    case 4:
      return [ExpectedVersion.Any, true]
    default:
      return [ExpectedVersion.Exact(0), false]
  }
}

layer(store, { excludeTestServices: true, timeout: "60 seconds" })("PgEventStore group commit", (it) => {
  it.effect("200 concurrent appends to 200 streams: exactly the wrong expectations fail, each with its own error", () =>
    Effect.gen(function* () {
      const { es, metrics } = yield* storeWithMetrics()
      const category = `g${unique()}`
      const streams = Array.from({ length: 200 }, (_, i) => `${category}-${i}`)
      // Streams 0..149 exist at version 1; 150..199 do not exist yet.
      yield* Effect.forEach(streams.slice(0, 150), (stream) => es.append(stream, [{ type: "Seeded", data: {} }]), {
        concurrency: "unbounded"
      })
      const before = yield* metrics
      const result = yield* Effect.forEach(
        streams,
        (stream, i) =>
          Effect.result(
            es.append(
              stream,
              [
                { type: "Appended", data: { i } },
                { type: "Again", data: { i } }
              ],
              {
                expected: expectationOf(i)[0]
              }
            )
          ),
        { concurrency: "unbounded" }
      )
      const { flushes, sizes } = yield* metrics
      for (let i = 0; i < 200; i++) {
        const outcome = result[i]!
        const [expected, ok] = expectationOf(i)
        const initial = i < 150 ? 1 : 0
        if (ok) {
          assert.strictEqual(outcome._tag, "Success", `append ${i} should succeed`)
          if (outcome._tag === "Success") {
            assert.strictEqual(outcome.success.stream, streams[i])
            assert.strictEqual(outcome.success.version, initial + 2)
            assert.strictEqual(outcome.success.positions.length, 2)
          }
        } else {
          assert.strictEqual(outcome._tag, "Failure", `append ${i} should fail`)
          if (outcome._tag === "Failure") {
            assert.deepStrictEqual(
              outcome.failure,
              new EventStore.WrongExpectedVersion({ stream: streams[i]!, expected, actual: initial })
            )
          }
        }
        assert.deepStrictEqual(
          yield* versionsOf(streams[i]!),
          Array.from({ length: initial + (ok ? 2 : 0) }, (_, v) => v + 1)
        )
      }
      // Batching happened: fewer statements than appends, and some batch held more than one append.
      assert.isTrue(flushes - before.flushes < 200, `${flushes - before.flushes} flushes for 200 appends`)
      assert.isTrue(sizes.max > 1, `largest batch ${sizes.max}`)
      assert.strictEqual(sizes.sum - before.sizes.sum, 200)
      // The positions of a batch's appends are distinct and each append's are consecutive in its stream's order.
      const positions = result.flatMap((r) => (r._tag === "Success" ? r.success.positions : []))
      assert.strictEqual(new Set(positions).size, positions.length)
    })
  )

  it.effect("50 concurrent Any appends to one stream get versions 1..50 with no gap, in submission order", () =>
    Effect.gen(function* () {
      const es = yield* EventStore.EventStore
      const stream = `one${unique()}-1`
      const results = yield* Effect.forEach(
        Array.from({ length: 50 }, (_, i) => i),
        (i) => es.append(stream, [{ type: "N", data: { i } }]),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(
        results.map((r) => r.version).sort((a, b) => a - b),
        Array.from({ length: 50 }, (_, i) => i + 1)
      )
      const events = [...(yield* Stream.runCollect(es.readStream(stream)))]
      assert.deepStrictEqual(
        events.map((e) => e.streamVersion),
        Array.from({ length: 50 }, (_, i) => i + 1)
      )
      // Each append's result names the version its own event got.
      for (let i = 0; i < 50; i++) {
        const event = events[results[i]!.version - 1]!
        assert.deepStrictEqual(event.data, { i })
        assert.deepStrictEqual(results[i]!.positions, [event.position])
      }
    })
  )

  it.effect("a duplicate event id with other content fails only its own append, in or across batches", () =>
    Effect.gen(function* () {
      const es = yield* EventStore.EventStore
      const category = `p${unique()}`
      const stored = crypto.randomUUID()
      const shared = crypto.randomUUID()
      yield* es.append(`${category}-stored`, [{ type: "First", data: 1, eventId: stored }])
      const appends = Array.from({ length: 30 }, (_, i) => {
        const eventId = i === 7 ? stored : i === 11 || i === 12 ? shared : crypto.randomUUID()
        return { stream: `${category}-${i}`, events: [{ type: "E", data: { i }, eventId }] }
      })
      const results = yield* Effect.forEach(
        appends,
        ({ events, stream }) => Effect.result(es.append(stream, events, { expected: ExpectedVersion.NoStream })),
        { concurrency: "unbounded" }
      )
      const failed = results.flatMap((r, i) => (r._tag === "Failure" ? [[i, r.failure._tag] as const] : []))
      // Append 7 reuses a stored id; of 11 and 12, which share an id, exactly one wins.
      assert.strictEqual(failed.length, 2)
      assert.deepStrictEqual(failed[0], [7, "EventIdConflict"])
      assert.isTrue(
        failed[1]![1] === "EventIdConflict" && (failed[1]![0] === 11 || failed[1]![0] === 12),
        String(failed[1])
      )
      for (let i = 0; i < 30; i++) {
        assert.deepStrictEqual(yield* versionsOf(`${category}-${i}`), failed.some(([f]) => f === i) ? [] : [1])
      }
    })
  )

  it.effect(
    "a retried append in a batch is recognised as a retry, whatever its expectation; its neighbours are written",
    () =>
      Effect.gen(function* () {
        const { es, metrics } = yield* storeWithMetrics()
        const category = `r${unique()}`
        const kinds: ReadonlyArray<readonly [string, ExpectedVersion.ExpectedVersion, boolean]> = [
          ["any", ExpectedVersion.Any, false],
          ["exists", ExpectedVersion.StreamExists, true],
          ["new", ExpectedVersion.NoStream, false],
          ["exact", ExpectedVersion.Exact(1), true]
        ]
        // Each retried append is stored first (after a seed event where its expectation needs one).
        const originals = yield* Effect.forEach(kinds, ([kind, expected, seeded]) =>
          Effect.gen(function* () {
            const stream = `${category}-${kind}`
            if (seeded) yield* es.append(stream, [{ type: "Seeded", data: {} }])
            const events = [
              { type: "E", data: { kind }, eventId: crypto.randomUUID() },
              { type: "F", data: { kind }, eventId: crypto.randomUUID() }
            ]
            const result = yield* es.append(stream, events, { expected })
            return { stream, events, expected, result }
          })
        )
        const before = yield* metrics
        // A fresh append goes first (alone), the rest queue behind it and go together: retries among fresh appends.
        const operations = [
          ...Array.from({ length: 4 }, (_, i) => ({ stream: `${category}-fresh${i}`, retry: undefined })),
          ...originals.flatMap((original, i) => [
            { stream: original.stream, retry: original },
            { stream: `${category}-fresh${4 + i}`, retry: undefined }
          ])
        ]
        const results = yield* Effect.forEach(
          operations,
          ({ retry, stream }) =>
            retry === undefined
              ? es.append(stream, [{ type: "E", data: {} }], { expected: ExpectedVersion.NoStream })
              : es.append(stream, retry.events, { expected: retry.expected }),
          { concurrency: "unbounded" }
        )
        const { sizes } = yield* metrics
        assert.isTrue(sizes.count - before.sizes.count < operations.length, "appends were batched")
        operations.forEach(({ retry, stream }, i) => {
          if (retry === undefined) assert.deepStrictEqual([results[i]!.stream, results[i]!.version], [stream, 1])
          else assert.deepStrictEqual(results[i], retry.result, `the retry of ${stream} returns the original result`)
        })
        for (const original of originals) {
          assert.deepStrictEqual(yield* versionsOf(original.stream), original.result.version === 3 ? [1, 2, 3] : [1, 2])
        }
      })
  )

  it.effect(
    "a combined statement that hits a unique violation is split: its neighbours succeed, the culprit fails",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const { es, metrics } = yield* storeWithMetrics({ groupCommit: { maxBatchesInFlight: 1 } })
        const category = `u${unique()}`
        const poisoned = crypto.randomUUID()
        const result = yield* Effect.gen(function* () {
          const go = yield* Deferred.make<void>()
          // Forked outside the caller's transaction (below), so these appends are coalesced.
          const appends = yield* Effect.andThen(
            Deferred.await(go),
            Effect.forEach(
              Array.from({ length: 12 }, (_, i) => i),
              (i) =>
                Effect.result(
                  es.append(`${category}-${i}`, [
                    { type: "E", data: { i }, eventId: i === 5 ? poisoned : crypto.randomUUID() }
                  ])
                ),
              { concurrency: "unbounded" }
            )
          ).pipe(Effect.forkChild)
          yield* sql.withTransaction(
            Effect.gen(function* () {
              // The caller's transaction stores the id, uncommitted: the batch's duplicate check cannot see it, and
              // its insert waits on the unique index until this transaction commits, then fails.
              yield* es.append(`${category}-holder`, [{ type: "Held", data: 0, eventId: poisoned }])
              yield* Deferred.succeed(go, undefined)
              // Commit once a batch waits on that lock.
              yield* untilSomeoneWaitsOnALock
            })
          )
          return yield* Fiber.join(appends)
        })
        const { splits } = yield* metrics
        for (let i = 0; i < 12; i++) {
          const outcome = result[i]!
          if (i === 5) {
            assert.strictEqual(outcome._tag === "Failure" && outcome.failure._tag, "EventIdConflict")
          } else {
            assert.strictEqual(outcome._tag, "Success", `append ${i}`)
          }
          assert.deepStrictEqual(yield* versionsOf(`${category}-${i}`), i === 5 ? [] : [1])
        }
        assert.isTrue(splits > 0, "the combined statement was split")
      })
  )

  it.effect("a batch held up by a lock does not hold up the appends to other streams", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      // Built where a TestClock is the clock, as in a user's test: group commit still times batches on the live clock.
      const { es, metrics } = yield* storeWithMetrics().pipe(Effect.provide(TestClock.layer()))
      const category = `l${unique()}`
      const held = `${category}-held`
      const others = Array.from({ length: 10 }, (_, i) => `${category}-${i}`)
      yield* es.append(held, [{ type: "Seeded", data: 0 }])
      // The batch needs a connection of its own while the transaction holds one. Run alone, this suite's pool had
      // only ever opened one and did not open another while the transaction held it (not reproduced outside the test
      // runner), so three are opened here first: this test is about the queue, not the pool.
      yield* Effect.all(
        Array.from({ length: 3 }, () => sql`select pg_sleep(0.05)`),
        { concurrency: "unbounded" }
      )
      const locked = yield* Deferred.make<void>()
      const othersMayGo = yield* Deferred.make<void>()
      // Forked before the transaction, so these appends are coalesced, outside it.
      const blocked = yield* Effect.andThen(
        Deferred.await(locked),
        es.append(held, [{ type: "Outside", data: 0 }])
      ).pipe(Effect.forkChild)
      const unblocked = yield* Effect.andThen(
        Deferred.await(othersMayGo),
        Effect.forEach(others, (stream) => es.append(stream, [{ type: "Other", data: 0 }]), {
          concurrency: "unbounded"
        })
      ).pipe(Effect.forkChild)
      const othersWhileLocked = yield* sql.withTransaction(
        Effect.gen(function* () {
          // The caller's transaction bumps the stream's row and keeps it locked until it commits.
          const inside = yield* es.append(held, [{ type: "Inside", data: 0 }])
          assert.strictEqual(inside.version, 2)
          yield* Deferred.succeed(locked, undefined)
          yield* untilSomeoneWaitsOnALock
          yield* Deferred.succeed(othersMayGo, undefined)
          // Joined while the lock is still held: they must finish without it (or the timeout fails the test).
          return yield* Fiber.join(unblocked).pipe(Effect.timeout("20 seconds"))
        })
      )
      assert.deepStrictEqual(
        othersWhileLocked.map((r) => r.version),
        others.map(() => 1)
      )
      const outside = yield* Fiber.join(blocked)
      assert.strictEqual(outside.version, 3)
      assert.deepStrictEqual(yield* versionsOf(held), [1, 2, 3])
      const { sizes } = yield* metrics
      assert.strictEqual(sizes.sum, 12, "every append outside the transaction went through the queue")
    })
  )

  it.effect("an append inside the caller's transaction is not coalesced: a rollback leaves nothing of it", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const es = yield* EventStore.EventStore
      const category = `r${unique()}`
      const outside = Array.from({ length: 20 }, (_, i) => `${category}-out${i}`)
      const inside = `${category}-in`
      const go = yield* Deferred.make<void>()
      // Forked outside the transaction: these are coalesced and commit on their own, at the same time.
      const concurrent = yield* Effect.andThen(
        Deferred.await(go),
        Effect.forEach(outside, (stream) => es.append(stream, [{ type: "Out", data: 0 }]), {
          concurrency: "unbounded"
        })
      ).pipe(Effect.forkChild)
      const error = yield* Effect.flip(
        sql.withTransaction(
          Effect.gen(function* () {
            yield* Deferred.succeed(go, undefined)
            yield* es.append(inside, [{ type: "In", data: 0 }])
            yield* Fiber.join(concurrent)
            return yield* Effect.fail("rollback")
          })
        )
      )
      assert.strictEqual(error, "rollback")
      assert.deepStrictEqual(yield* versionsOf(inside), [])
      for (const stream of outside) assert.deepStrictEqual(yield* versionsOf(stream), [1])
    })
  )

  it.effect("with group commit off, every append is its own statement", () =>
    Effect.gen(function* () {
      const { es, metrics } = yield* storeWithMetrics({ groupCommit: false })
      const category = `o${unique()}`
      const result = yield* Effect.forEach(
        Array.from({ length: 20 }, (_, i) => i),
        (i) => es.append(`${category}-${i}`, [{ type: "E", data: { i } }]),
        { concurrency: "unbounded" }
      )
      const { flushes } = yield* metrics
      assert.deepStrictEqual(
        result.map((r) => r.version),
        Array.from({ length: 20 }, () => 1)
      )
      assert.strictEqual(flushes, 0)
    })
  )
})
