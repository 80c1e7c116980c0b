import { assert, layer } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { PgConfig, PgSubscriptions } from "@evently/postgres"
import { Subscriptions } from "@evently/store"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as SqlClient from "effect/sql/SqlClient"
import * as Stream from "effect/Stream"
import { ownClient, terminate } from "./faults.ts"
import { insertEvents, layerSubscriptions, positionsOf } from "./helpers.ts"

const rowsOf = (name: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{ checkpoints: number; parked: number }>`select
      (select count(*)::int from evently_checkpoints where subscription = ${name}) as checkpoints,
      (select count(*)::int from evently_parked where subscription = ${name}) as parked`
    return row!
  })

// Subscriptions on a client of their own with a pool of `maxConnections`, on the test's database.
const smallPool = (maxConnections: number, applicationName = "small-pool") =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{ database: string }>`select current_database() as database`
    const url = yield* PgConfig.url
    return PgSubscriptions.layer({ reconnectDelay: "100 millis" }).pipe(
      Layer.provideMerge(Layer.orDie(PgClient.layer({ url, database: row!.database, maxConnections, applicationName })))
    )
  })

layer(layerSubscriptions(), { excludeTestServices: true, timeout: "60 seconds" })("PgSubscriptions lifecycle", (it) => {
  it.effect("an ephemeral run leaves no row behind, and after its connections die resumes from what it handled", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const before = yield* insertEvents("eph-1", 3)
        // The subscription's own client and service, built once, so that the test can kill exactly its backends.
        const own = yield* Layer.build(yield* ownClient("ephemeral-tail"))
        const subs = Context.get(own, Subscriptions.Subscriptions)
        const handled: Array<bigint> = []
        const skipped: Array<bigint> = []
        const fiber = yield* subs
          .run(
            "eph",
            (event) =>
              event.streamVersion === 7
                ? Effect.sync(() => skipped.push(event.position)).pipe(Effect.andThen(Effect.fail("parked")))
                : Effect.sync(() => handled.push(event.position)),
            { categories: ["eph"], ephemeral: true, start: Subscriptions.End, onError: Subscriptions.Skip }
          )
          .pipe(Effect.forkChild)
        const waitFor = (count: number) =>
          Effect.sync(() => new Set([...handled, ...skipped]).size).pipe(
            Effect.repeat({ until: (n: number) => n >= count, schedule: Schedule.spaced("20 millis") }),
            Effect.timeout("20 seconds")
          )
        // `End` is resolved when it starts: wait until it is live (visible to status), then append.
        yield* subs.status("eph").pipe(
          Effect.repeat({
            until: (status: Subscriptions.Status) => status.partitions.length === 1,
            schedule: Schedule.spaced("20 millis")
          }),
          Effect.timeout("20 seconds")
        )
        const first = yield* insertEvents("eph-1", 3)
        yield* waitFor(3)
        assert.isAbove(yield* terminate("ephemeral-tail"), 0)
        const second = yield* insertEvents("eph-1", 2)
        yield* waitFor(5)
        yield* Fiber.interrupt(fiber)
        // Nothing before its start, everything after, across the reconnect; version 7 parked in memory.
        assert.deepStrictEqual([...new Set([...handled, ...skipped])].sort(), [...first, ...second].sort())
        assert.deepStrictEqual([...new Set(skipped)], [second[0]!])
        assert.deepStrictEqual(
          (yield* subs.parked("eph")).map((event) => event.position),
          [second[0]!]
        )
        assert.isFalse(handled.some((position) => before.includes(position)))
        assert.deepStrictEqual(yield* rowsOf("eph"), { checkpoints: 0, parked: 0 })
        // Once it has ended, its name has no checkpoint at all.
        assert.deepStrictEqual((yield* subs.status("eph")).partitions, [])
      })
    )
  )

  it.effect("rebase of a name with no checkpoint fails with UnknownSubscription and creates nothing", () =>
    Effect.gen(function* () {
      const unknown = yield* Effect.flip(PgSubscriptions.rebase("never-ran", Subscriptions.Beginning))
      assert.strictEqual(unknown._tag, "UnknownSubscription")
      assert.include(unknown.message, "never-ran")
      assert.deepStrictEqual(yield* rowsOf("never-ran"), { checkpoints: 0, parked: 0 })
      const invalid = yield* Effect.flip(PgSubscriptions.rebase("bad\u0000name"))
      assert.strictEqual(invalid._tag, "InvalidSubscription")
    })
  )

  it.effect("After with a transaction id this cluster has not reached is refused at once, and nothing is created", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const subs = yield* Subscriptions.Subscriptions
      const [row] = yield* sql<{ xmax: string }>`select pg_snapshot_xmax(pg_current_snapshot())::text as xmax`
      const future = Subscriptions.After(1n, BigInt(row!.xmax) + 1_000_000n)
      const refused = yield* Effect.flip(Stream.runDrain(subs.subscribe("future", { start: future })))
      assert.strictEqual(refused._tag, "InvalidSubscription")
      assert.include(refused.message, "has not reached")
      assert.deepStrictEqual(yield* rowsOf("future"), { checkpoints: 0, parked: 0 })
      const rebased = yield* Effect.flip(PgSubscriptions.rebase("future", future))
      assert.strictEqual(rebased._tag, "InvalidSubscription")
    })
  )

  it.effect("a worker whose pool cannot hold its connections fails at start, saying how many it needs", () =>
    Effect.gen(function* () {
      const pool = yield* smallPool(2)
      const refused = yield* Effect.gen(function* () {
        const subs = yield* Subscriptions.Subscriptions
        return yield* Effect.flip(subs.run("tight", () => Effect.void, { transactional: true }))
      }).pipe(Effect.provide(pool))
      assert.strictEqual(refused._tag, "InvalidSubscription")
      assert.include(refused.message, "the connection pool has 2 connections and this worker needs 4")
      const groups = yield* Effect.gen(function* () {
        const subs = yield* Subscriptions.Subscriptions
        return yield* Effect.flip(Stream.runDrain(subs.subscribe("tight", { partitions: 2 })))
      }).pipe(Effect.provide(pool))
      assert.include(groups.message, "needs 5")
      assert.deepStrictEqual(yield* rowsOf("tight"), { checkpoints: 0, parked: 0 })
    })
  )

  it.effect("waitUntilCaughtUp's timeout bounds the whole call, even when no connection is left for it", () =>
    Effect.gen(function* () {
      yield* insertEvents("full-1", 2)
      const sql = yield* SqlClient.SqlClient
      const pool = yield* smallPool(3, "full-pool")
      const result = yield* Effect.scoped(
        Effect.gen(function* () {
          const subs = yield* Subscriptions.Subscriptions
          // The test holds one connection; the subscription's session and LISTEN take the other two.
          const own = yield* SqlClient.SqlClient
          const held = yield* own.reserve
          yield* held.executeUnprepared("select 1", [], undefined)
          const runner = yield* subs.run("full", () => Effect.void, { categories: ["full"] }).pipe(Effect.forkChild)
          yield* sql<{ count: number }>`select count(*)::int as count from pg_stat_activity
            where application_name = 'full-pool' and datname = current_database()`.pipe(
            Effect.repeat({ until: (rows) => rows[0]!.count >= 3, schedule: Schedule.spaced("20 millis") }),
            Effect.timeout("20 seconds")
          )
          const waited = yield* Effect.flip(subs.waitUntilCaughtUp("full", { timeout: "1 second" })).pipe(
            Effect.timeoutOption("20 seconds")
          )
          yield* Fiber.interrupt(runner)
          return waited
        })
      ).pipe(Effect.provide(pool))
      assert.strictEqual(result._tag, "Some")
      if (result._tag === "Some") assert.strictEqual(result.value._tag, "CaughtUpTimeout")
      assert.deepStrictEqual((yield* positionsOf("full")).length, 2)
    })
  )

  it.effect("an ephemeral run from End that restarts before its first commit skips nothing committed meanwhile", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const subs = yield* Subscriptions.Subscriptions
      // The handler's first statement fails with a serialization failure: the partition starts over.
      yield* sql`create sequence eph_end_attempts`
      yield* sql`create function eph_end_fail_once() returns void language plpgsql as $$
        begin
          if nextval('eph_end_attempts') = 1 then
            raise exception 'injected serialization failure' using errcode = '40001';
          end if;
        end $$`
      yield* insertEvents("ephend-1", 2)
      const handled: Array<bigint> = []
      const fiber = yield* subs
        .run(
          "eph-end",
          (event) =>
            Effect.andThen(
              sql`select eph_end_fail_once()`,
              Effect.sync(() => handled.push(event.position))
            ),
          { categories: ["ephend"], ephemeral: true, start: Subscriptions.End }
        )
        .pipe(Effect.forkChild)
      yield* subs.status("eph-end").pipe(
        Effect.repeat({
          until: (status: Subscriptions.Status) => status.partitions.length === 1,
          schedule: Schedule.spaced("20 millis")
        }),
        Effect.timeout("20 seconds")
      )
      const appended = yield* insertEvents("ephend-1", 1)
      // `End` may also deliver an event that committed just before the start (never one after it is missed).
      yield* Effect.sync(() => handled.includes(appended[0]!)).pipe(
        Effect.repeat({ until: (seen: boolean) => seen, schedule: Schedule.spaced("20 millis") }),
        Effect.timeout("20 seconds")
      )
      yield* Fiber.interrupt(fiber)
      assert.include(handled, appended[0]!)
    })
  )
})
