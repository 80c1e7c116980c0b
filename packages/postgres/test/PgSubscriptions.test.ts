import { assert, layer } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { PgConfig, PgSchema, PgSubscriptions } from "@evently/postgres"
import { Subscriptions } from "@evently/store"
import { SubscriptionsSuite } from "@evently/testing"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as SqlClient from "effect/sql/SqlClient"
import * as Stream from "effect/Stream"
import { insertEvents, layerSubscriptions, positionsOf } from "./helpers.ts"

const quiet = (status: Subscriptions.Status) => status.partitions[0]!.heldBackByPid === undefined

layer(layerSubscriptions(), { excludeTestServices: true, timeout: "60 seconds" })("PgSubscriptions", (it) => {
  it.effect("out-of-order commits: 8 writers, 20,000 events, each handled exactly once, none skipped", () =>
    Effect.gen(function* () {
      const subs = yield* Subscriptions.Subscriptions
      const seen = new Map<bigint, number>()
      const runner = yield* subs
        .run("ooo", (event) => Effect.sync(() => seen.set(event.position, (seen.get(event.position) ?? 0) + 1)), {
          categories: ["ooo"],
          batchSize: 500
        })
        .pipe(Effect.forkChild)
      yield* Effect.forEach(
        Array.from({ length: 8 }, (_, writer) => writer),
        (writer) =>
          Effect.forEach(
            Array.from({ length: 50 }, (_, i) => i),
            () =>
              Effect.flatMap(Random.nextIntBetween(0, 20), (sleepMillis) =>
                insertEvents(`ooo-${writer}`, 50, { sleepMillis })
              ),
            { discard: true }
          ),
        { concurrency: 8, discard: true }
      )
      yield* subs.waitUntilCaughtUp("ooo")
      yield* Fiber.interrupt(runner)
      const all = yield* positionsOf("ooo")
      assert.strictEqual(all.length, 20_000)
      assert.strictEqual(seen.size, 20_000)
      assert.deepStrictEqual(
        all.filter((position) => seen.get(position) !== 1),
        []
      )
      // The writers really committed out of position order: a position-only cursor would have skipped rows.
      const sql = yield* SqlClient.SqlClient
      const [inversions] = yield* sql<{ count: number }>`
        select count(*)::int as count from (
          select transaction_id, position,
            lag(position) over (order by transaction_id, position) as previous
          from evently_events where category = 'ooo') t
        where previous > position`
      assert.isAbove(inversions!.count, 0)
    })
  )

  it.effect("a consumer group of 3 over 100 streams handles every event once, in order per stream", () =>
    Effect.gen(function* () {
      const subs = yield* Subscriptions.Subscriptions
      const seen = new Map<string, Array<number>>()
      const byPartition = [0, 0, 0]
      const workers = yield* Effect.forEach([0, 1, 2], (partition) =>
        subs
          .run(
            "group",
            (event) =>
              Effect.sync(() => {
                byPartition[partition]!++
                seen.set(event.stream, [...(seen.get(event.stream) ?? []), event.streamVersion])
              }),
            { categories: ["grp"], partitions: 3, partition, batchSize: 37 }
          )
          .pipe(Effect.forkChild)
      )
      yield* Effect.forEach(
        Array.from({ length: 10 }, (_, round) => round),
        () =>
          Effect.forEach(
            Array.from({ length: 100 }, (_, i) => i),
            (i) => insertEvents(`grp-${i}`, 1),
            { concurrency: 8, discard: true }
          ),
        { discard: true }
      )
      yield* subs.waitUntilCaughtUp("group")
      yield* Effect.forEach(workers, Fiber.interrupt)
      assert.strictEqual(seen.size, 100)
      for (const versions of seen.values()) assert.deepStrictEqual(versions, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
      assert.strictEqual(
        byPartition.reduce((a, b) => a + b, 0),
        1000
      )
      assert.isTrue(byPartition.every((count) => count > 0))
    })
  )

  it.effect("a crashed worker mid-batch: the standby takes over; with transactional handling exactly once", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const subs = yield* Subscriptions.Subscriptions
      yield* sql`create table crash_projection (position bigint not null, worker text not null)`
      for (let i = 0; i < 20; i++) yield* insertEvents(`crash-${i}`, 25)
      const progress = { handledByA: 0 }
      // Each worker has a client (and connections) of its own, named so that its backends can be killed.
      const [{ database }] = yield* sql<{ database: string }>`select current_database() as database`
      const url = yield* PgConfig.url
      const worker = (id: string) =>
        Effect.gen(function* () {
          const own = yield* Subscriptions.Subscriptions
          const ownSql = yield* SqlClient.SqlClient
          return yield* own.run(
            "crash",
            (event) =>
              Effect.gen(function* () {
                if (id === "a") progress.handledByA++
                yield* ownSql`insert into crash_projection (position, worker) values (${event.position}, ${id})`
                yield* Effect.sleep("2 millis")
              }),
            { categories: ["crash"], batchSize: 40, transactional: true }
          )
        }).pipe(
          Effect.provide(
            PgSubscriptions.layer({ lockRetryInterval: "100 millis" }).pipe(
              Layer.provideMerge(
                Layer.orDie(PgClient.layer({ url, database, applicationName: `crash-${id}`, maxConnections: 4 }))
              )
            )
          ),
          Effect.forkChild
        )
      const a = yield* worker("a")
      yield* Effect.sleep("50 millis")
      const b = yield* worker("b")
      while (progress.handledByA < 150) yield* Effect.sleep("5 millis")
      // The crash, inside a batch: A's connections are closed under it (its transaction and lock die with them),
      // then its fiber is interrupted.
      const [killed] = yield* sql<{ count: number }>`
        select count(*)::int as count from (
          select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'crash-a') t`
      assert.isAbove(killed!.count, 0)
      yield* Fiber.interrupt(a)
      yield* subs.waitUntilCaughtUp("crash", { timeout: "20 seconds" })
      yield* Fiber.interrupt(b)
      const rows = yield* sql<{ position: bigint; copies: number; workers: string }>`
        select position, count(*)::int as copies, string_agg(distinct worker, ',') as workers
        from crash_projection group by position order by position`
      assert.deepStrictEqual(
        rows.map((row) => BigInt(row.position)),
        yield* positionsOf("crash")
      )
      assert.deepStrictEqual(
        rows.filter((row) => row.copies !== 1),
        []
      )
      assert.isTrue(rows.some((row) => row.workers === "a"))
      assert.isTrue(rows.some((row) => row.workers === "b"))
    })
  )

  it.effect("a crashed worker without transactions: every event handled at least once", () =>
    Effect.gen(function* () {
      const subs = yield* Subscriptions.Subscriptions
      for (let i = 0; i < 10; i++) yield* insertEvents(`alo-${i}`, 30)
      const handled = new Map<bigint, number>()
      const worker = subs
        .run(
          "alo",
          (event) =>
            Effect.sync(() => handled.set(event.position, (handled.get(event.position) ?? 0) + 1)).pipe(
              Effect.andThen(Effect.sleep("1 millis"))
            ),
          { categories: ["alo"], batchSize: 50 }
        )
        .pipe(Effect.forkChild)
      const a = yield* worker
      const b = yield* worker
      while (handled.size < 100) yield* Effect.sleep("5 millis")
      yield* Fiber.interrupt(a)
      yield* subs.waitUntilCaughtUp("alo", { timeout: "20 seconds" })
      yield* Fiber.interrupt(b)
      const all = yield* positionsOf("alo")
      assert.deepStrictEqual(
        all.filter((position) => (handled.get(position) ?? 0) < 1),
        []
      )
    })
  )

  it.effect(
    "pg_terminate_backend under a running subscription: it reconnects and continues, Recovering then live",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const subs = yield* Subscriptions.Subscriptions
        const seen = yield* SubscriptionsSuite.watchLifecycle(subs)
        const handled = new Set<bigint>()
        const runner = yield* subs
          .run("terminate", (event) => Effect.sync(() => handled.add(event.position)), {
            categories: ["term"],
            pollInterval: "200 millis"
          })
          .pipe(Effect.forkChild)
        yield* insertEvents("term-1", 10)
        yield* subs.waitUntilCaughtUp("terminate")
        const [killed] = yield* sql<{ count: number }>`
        select count(*)::int as count from (
          select pg_terminate_backend(pid) from pg_stat_activity
          where datname = current_database() and pid <> pg_backend_pid()) t`
        assert.isAbove(killed!.count, 0)
        yield* insertEvents("term-1", 10).pipe(Effect.retry(Schedule.recurs(3)))
        yield* subs.waitUntilCaughtUp("terminate", { timeout: "20 seconds" }).pipe(Effect.retry(Schedule.recurs(3)))
        const tags = () => SubscriptionsSuite.phasesOf(seen, "terminate").map((phase) => phase._tag)
        yield* SubscriptionsSuite.until(() => tags().lastIndexOf("CaughtUp") > tags().lastIndexOf("Recovering"))
        yield* Fiber.interrupt(runner)
        assert.deepStrictEqual(
          [...handled].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
          yield* positionsOf("term")
        )
        // The fault shows as Recovering, and the partition comes back live.
        assert.strictEqual(tags()[0], "Started")
        assert.include(tags(), "Recovering")
      }).pipe(Effect.scoped)
  )

  it.effect(
    "transactional handling: a failed statement undoes only its own handling, so retry and skip still work",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const subs = yield* Subscriptions.Subscriptions
        yield* sql`create table tx_projection (k text primary key, position bigint not null)`
        yield* sql`insert into tx_projection (k, position) values ('taken', 0)`
        const positions = yield* insertEvents("txp-1", 4)
        const bad = positions[1]!
        // The bad event's first write hits the primary key: Postgres would abort the whole batch's transaction.
        const project =
          (name: string, tries: { n: number }, healAfter: number) => (event: { readonly position: bigint }) =>
            Effect.suspend(() => {
              const key = event.position === bad && ++tries.n <= healAfter ? "taken" : `${name}-${event.position}`
              return sql`insert into tx_projection (k, position) values (${key}, ${event.position})`
            })
        const retryTries = { n: 0 }
        const retrying = yield* subs
          .run("tx-retry", project("retry", retryTries, 2), {
            categories: ["txp"],
            transactional: true,
            onError: Subscriptions.Retry(Schedule.spaced("5 millis"))
          })
          .pipe(Effect.forkChild)
        yield* subs.waitUntilCaughtUp("tx-retry")
        yield* Fiber.interrupt(retrying)
        assert.strictEqual(retryTries.n, 3)
        const retried = yield* sql<{
          position: bigint
        }>`select position from tx_projection where k like 'retry-%' order by 1`
        assert.deepStrictEqual(
          retried.map((r) => BigInt(r.position)),
          [...positions]
        )

        const skipping = yield* subs
          .run("tx-skip", project("skip", { n: 0 }, Infinity), {
            categories: ["txp"],
            transactional: true,
            onError: Subscriptions.Skip
          })
          .pipe(Effect.forkChild)
        yield* subs.waitUntilCaughtUp("tx-skip")
        yield* Fiber.interrupt(skipping)
        const skipped = yield* sql<{
          position: bigint
        }>`select position from tx_projection where k like 'skip-%' order by 1`
        assert.deepStrictEqual(
          skipped.map((r) => BigInt(r.position)),
          positions.filter((p) => p !== bad)
        )
        assert.deepStrictEqual(
          (yield* subs.parked("tx-skip")).map((event) => event.position),
          [bad]
        )
      })
  )

  it.effect("error policies: stop fails, skip parks the event with its error, retry retries", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const subs = yield* Subscriptions.Subscriptions
      const positions = yield* insertEvents("pol-1", 5)
      const bad = positions[2]!
      const failOnBad = (event: { readonly position: bigint }) =>
        event.position === bad ? Effect.fail("boom") : Effect.void

      const stopped = yield* Effect.flip(subs.run("stop", failOnBad, { categories: ["pol"] }))
      assert.strictEqual(stopped._tag, "HandlerFailed")
      // The failing batch is not committed: its events come again when the subscription runs next.
      const [stopStatus] = (yield* subs.status("stop")).partitions
      assert.isBelow(Number(stopStatus!.checkpoint.position), Number(bad))
      assert.strictEqual(stopStatus!.lagEvents, 5)

      const skipping = yield* subs
        .run("skip", failOnBad, { categories: ["pol"], onError: Subscriptions.Skip })
        .pipe(Effect.forkChild)
      yield* subs.waitUntilCaughtUp("skip")
      yield* Fiber.interrupt(skipping)
      const parkedRows = yield* sql<{ position: bigint; error: string }>`
        select position, error from evently_parked where subscription = 'skip'`
      assert.deepStrictEqual(
        parkedRows.map((row) => [BigInt(row.position), row.error]),
        [[bad, "boom"]]
      )
      assert.deepStrictEqual(
        (yield* subs.parked("skip")).map((event) => event.position),
        [bad]
      )

      let attempts = 0
      const retrying = yield* subs
        .run("retry", (event) => (event.position === bad && ++attempts < 3 ? Effect.fail("flaky") : Effect.void), {
          categories: ["pol"],
          onError: Subscriptions.Retry(Schedule.spaced("5 millis"))
        })
        .pipe(Effect.forkChild)
      yield* subs.waitUntilCaughtUp("retry")
      yield* Fiber.interrupt(retrying)
      assert.strictEqual(attempts, 3)
      assert.deepStrictEqual(yield* subs.parked("retry"), [])
    })
  )

  it.effect("restore safety: a checkpoint from another cluster or from the future is refused; rebase fixes it", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const subs = yield* Subscriptions.Subscriptions
      yield* insertEvents("rst-1", 3)
      const first = yield* subs.subscribe("restore", { categories: ["rst"] }).pipe(
        Stream.take(1),
        Stream.mapEffect((batch) => Effect.as(batch.commit, batch)),
        Stream.runCollect
      )
      assert.strictEqual(first[0]!.events.length, 3)

      yield* sql`update evently_checkpoints set system_identifier = system_identifier + 1 where subscription = 'restore'`
      const otherCluster = yield* Effect.flip(subs.subscribe("restore", { categories: ["rst"] }).pipe(Stream.runDrain))
      assert.strictEqual(otherCluster._tag, "CheckpointFromAnotherCluster")
      assert.include(otherCluster.message, "written by database cluster")

      yield* PgSubscriptions.rebase("restore", Subscriptions.Beginning)
      yield* sql`update evently_checkpoints
        set transaction_id = (pg_snapshot_xmax(pg_current_snapshot())::text::bigint + 1000000)::text::xid8
        where subscription = 'restore'`
      const future = yield* Effect.flip(subs.subscribe("restore", { categories: ["rst"] }).pipe(Stream.runDrain))
      assert.strictEqual(future._tag, "CheckpointFromAnotherCluster")
      assert.include(future.message, "went backwards")

      yield* PgSubscriptions.rebase("restore", Subscriptions.End)
      const fiber = yield* subs
        .subscribe("restore", { categories: ["rst"] })
        .pipe(Stream.take(1), Stream.runCollect, Effect.forkChild)
      const later = yield* insertEvents("rst-2", 2)
      const after = yield* Fiber.join(fiber)
      assert.deepStrictEqual(
        after[0]!.events.map((event) => event.position),
        later
      )
    })
  )

  it.effect("status: lag, and the backend pid of a long transaction that holds the subscription back", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const subs = yield* Subscriptions.Subscriptions
      yield* insertEvents("lag-1", 4)
      const first = yield* subs.subscribe("lag", { categories: ["lag"] }).pipe(
        Stream.take(1),
        Stream.mapEffect((batch) => Effect.as(batch.commit, batch)),
        Stream.runCollect
      )
      assert.strictEqual(first[0]!.events.length, 4)
      yield* insertEvents("lag-1", 3)
      // xmin is cluster-wide: a transaction of another test file may hold it for a moment, so wait until none does.
      const [behind] = (yield* subs
        .status("lag")
        .pipe(Effect.repeat({ until: quiet, schedule: Schedule.spaced("50 millis"), times: 200 }))).partitions
      assert.strictEqual(behind!.lagEvents, 3)
      assert.isAtLeast(behind!.lagSeconds, 0)
      assert.isUndefined(behind!.heldBackByPid)

      // A long transaction that has a transaction id pins xmin: events committed after it wait behind it.
      const held = yield* Effect.scoped(
        Effect.gen(function* () {
          const connection = yield* sql.reserve
          yield* connection.executeUnprepared("begin", [], undefined)
          const [{ pid }] = (yield* connection.executeUnprepared(
            "select pg_backend_pid() as pid, pg_current_xact_id()::text as tx",
            [],
            undefined
          )) as ReadonlyArray<{ pid: number }>
          yield* insertEvents("lag-1", 2)
          // Ours is the oldest open transaction once any short one of another test file has ended.
          const status = yield* subs.status("lag").pipe(
            Effect.repeat({
              until: (s: Subscriptions.Status) => s.partitions[0]!.heldBackByPid === pid,
              schedule: Schedule.spaced("50 millis"),
              times: 200
            })
          )
          yield* connection.executeUnprepared("rollback", [], undefined)
          return { pid, status }
        })
      )
      assert.strictEqual(held.status.partitions[0]!.lagEvents, 5)
      assert.strictEqual(held.status.partitions[0]!.heldBackByPid, held.pid)
    })
  )

  it.effect("orders the cursor by transaction id as a number: 99 comes before 100, and nothing is skipped", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const subs = yield* Subscriptions.Subscriptions
      const t = yield* PgSchema.Tables
      // Two committed rows with transaction ids of different lengths, the later position in the earlier
      // transaction: as text '100' < '99', and a cursor sorted that way commits past 99 before it is read.
      const rows = yield* sql<{ position: bigint }>`
        insert into ${sql(t.events)}
          (transaction_id, stream, category, stream_version, event_id, event_type, data, recorded_at)
        values ('100'::xid8, 'digits-1', 'digits', 1, gen_random_uuid(), 'A', '{}'::jsonb, now()),
               ('99'::xid8, 'digits-2', 'digits', 1, gen_random_uuid(), 'B', '{}'::jsonb, now())
        returning position`
      const [first, second] = rows.map((row) => BigInt(row.position))
      const handled: Array<bigint> = []
      const worker = yield* subs
        .run("digits", (event) => Effect.sync(() => handled.push(event.position)), {
          categories: ["digits"],
          batchSize: 1
        })
        .pipe(Effect.forkChild)
      yield* subs.waitUntilCaughtUp("digits")
      yield* Fiber.interrupt(worker)
      assert.deepStrictEqual(handled, [second, first])
    })
  )

  it.effect("wakes on NOTIFY long before the poll, and works poll-only", () =>
    Effect.gen(function* () {
      const subs = yield* Subscriptions.Subscriptions
      // A 30-second poll: only the NOTIFY can deliver within the test's timeout.
      const listening = yield* subs
        .subscribe("wake", { categories: ["wake"], pollInterval: "30 seconds", start: Subscriptions.End })
        .pipe(Stream.take(1), Stream.runCollect, Effect.forkChild)
      yield* Effect.sleep("300 millis")
      const notified = yield* insertEvents("wake-1", 1)
      assert.deepStrictEqual(
        (yield* Fiber.join(listening))[0]!.events.map((event) => event.position),
        notified
      )

      const polling = yield* subs
        .subscribe("poll", { categories: ["wake"], notify: false, pollInterval: "50 millis", start: Subscriptions.End })
        .pipe(Stream.take(1), Stream.runCollect, Effect.forkChild)
      yield* Effect.sleep("300 millis")
      const polled = yield* insertEvents("wake-2", 1)
      assert.deepStrictEqual(
        (yield* Fiber.join(polling))[0]!.events.map((event) => event.position),
        polled
      )
    })
  )

  it.effect("waitUntilCaughtUp waits for the events committed before the call, and times out when nobody runs", () =>
    Effect.gen(function* () {
      const subs = yield* Subscriptions.Subscriptions
      yield* insertEvents("wait-1", 5)
      const timedOut = yield* Effect.flip(subs.waitUntilCaughtUp("nobody", { timeout: "200 millis" }))
      assert.strictEqual(timedOut._tag, "CaughtUpTimeout")
      const handled: Array<bigint> = []
      const runner = yield* subs
        .run("wait", (event) => Effect.sync(() => handled.push(event.position)), { categories: ["wait"] })
        .pipe(Effect.forkChild)
      yield* subs.waitUntilCaughtUp("wait")
      assert.deepStrictEqual(handled, yield* positionsOf("wait"))
      yield* Fiber.interrupt(runner)
      const tables = yield* PgSchema.Tables
      assert.strictEqual(tables.checkpoints, "evently_checkpoints")
    })
  )
})
