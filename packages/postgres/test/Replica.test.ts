import { assert, layer } from "@effect/vitest"
import { PgEventStore, PgSchema, PgSubscriptions } from "@evently/postgres"
import { EventStore } from "@evently/store"
import { TestDatabase } from "@evently/testing"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as SqlClient from "effect/sql/SqlClient"
import * as Stream from "effect/Stream"
import * as EventRow from "../src/internal/eventRow.ts"
import * as Connection from "../src/internal/subscriptions/connection.ts"
import { filterFragment } from "../src/internal/subscriptions/cursor.ts"
import * as Reader from "../src/internal/subscriptions/reader.ts"
import { PgReplica } from "@evently/postgres"
import { layerReplica, standby } from "./standby.ts"

const primary = PgEventStore.layer().pipe(
  Layer.provideMerge(
    PgSchema.layerMigrate.pipe(Layer.orDie, Layer.provideMerge(TestDatabase.layer({ maxConnections: 20 })))
  )
)

// The standby is cloned from the primary once the test database is migrated, so both have the tables.
const replica = Layer.unwrap(Effect.map(standby, ({ port }) => layerReplica(port)))

const all = Layer.mergeAll(
  PgReplica.layerReads,
  PgSubscriptions.layerReplica({ lockRetryInterval: "100 millis", reconnectDelay: "100 millis" })
).pipe(Layer.provideMerge(replica), Layer.provideMerge(primary))

/** The positions of `categories` on the primary, in the subscriptions' `(transaction_id, position)` order. */
const cursorOrder = (categories: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const t = yield* PgSchema.Tables
    const rows = yield* sql<{ position: string }>`select e.position::text as position from ${sql(t.events)} e
      where e.category = any(${categories}::text[]) order by e.transaction_id, e.position`
    return rows.map((row) => BigInt(row.position))
  })

layer(all, { excludeTestServices: true, timeout: "60 seconds" })("PgReplica", (it) => {
  it.effect("the replica is a hot standby, read-only, and its reads return every event in order once replayed", () =>
    Effect.gen(function* () {
      const { sql: replicaSql } = yield* PgReplica.Replica
      const [recovery] = yield* replicaSql<{ standby: boolean }>`select pg_is_in_recovery() as standby`
      assert.isTrue(recovery!.standby)

      const store = yield* EventStore.EventStore
      const reads = yield* PgReplica.ReplicaReads
      for (let batch = 0; batch < 20; batch++) {
        for (const stream of ["rd-1", "rd-2", "other-1"]) {
          yield* store.append(stream, [
            { type: "A", data: { batch } },
            { type: "B", data: { batch } }
          ])
        }
      }
      yield* PgReplica.caughtUp()
      const onPrimary = {
        stream: yield* Stream.runCollect(store.readStream("rd-1")),
        backward: yield* Stream.runCollect(store.readStream("rd-2", { direction: "backward", batchSize: 7 })),
        categories: yield* Stream.runCollect(store.readCategories(["rd"], { batchSize: 9 })),
        all: yield* Stream.runCollect(store.readAll())
      }
      const onReplica = {
        stream: yield* Stream.runCollect(reads.readStream("rd-1")),
        backward: yield* Stream.runCollect(reads.readStream("rd-2", { direction: "backward", batchSize: 7 })),
        categories: yield* Stream.runCollect(reads.readCategories(["rd"], { batchSize: 9 })),
        all: yield* Stream.runCollect(reads.readAll())
      }
      assert.strictEqual(onReplica.all.length, 120)
      assert.strictEqual(onReplica.categories.length, 80)
      assert.deepStrictEqual(onReplica, onPrimary)
      assert.deepStrictEqual(
        onReplica.stream.map((event) => event.streamVersion),
        Array.from({ length: 40 }, (_, i) => i + 1)
      )
      assert.strictEqual(yield* reads.streamVersion("rd-2"), 40)
    })
  )

  it.effect("caughtUp returns on an idle primary whose WAL position sits just after a WAL switch", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const store = yield* EventStore.EventStore
      yield* store.append("switch-1", [{ type: "A", data: {} }])
      // A switch leaves the insert position after the next segment's page header, where no record ends; the replica's
      // replay position stops at the segment boundary until something else is written (as after pg_basebackup).
      yield* sql`select pg_switch_wal()::text`
      const [row] = yield* sql<{ offset: number }>`select (mod(pg_current_wal_insert_lsn() - '0/0'::pg_lsn,
        pg_size_bytes(current_setting('wal_segment_size'))))::int as offset`
      assert.strictEqual(row!.offset, 40, "the insert position is after the new segment's long page header")
      yield* PgReplica.caughtUp({ timeout: "5 seconds" })
      const reads = yield* PgReplica.ReplicaReads
      assert.strictEqual(yield* reads.streamVersion("switch-1"), 1)
    })
  )

  it.effect(
    "a subscription on the replica: every event once, in order, while 4 writers append; checkpoint on the primary",
    () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const subs = yield* PgReplica.ReplicaSubscriptions
        const delivered: Array<bigint> = []
        const runner = yield* subs
          .run("replica-sub", (event) => Effect.sync(() => delivered.push(event.position)), {
            categories: ["w0", "w1", "w2"],
            batchSize: 100
          })
          .pipe(Effect.forkChild)
        // 4 writers × 500 events, one event per append, over 3 categories and 12 streams; `skip` is not subscribed.
        yield* Effect.forEach(
          [0, 1, 2, 3],
          (writer) =>
            Effect.forEach(
              Array.from({ length: 500 }, (_, i) => i),
              (i) =>
                store.append(`${i % 4 === 3 ? "skip" : `w${i % 3}`}-${writer}x${i % 3}`, [{ type: "E", data: { i } }]),
              { discard: true }
            ),
          { concurrency: 4, discard: true }
        )
        yield* subs.waitUntilCaughtUp("replica-sub", { timeout: "30 seconds" })
        // Its reads ran on the replica.
        const { sql: replicaSql } = yield* PgReplica.Replica
        yield* waitForReadAfter(replicaSql)
        yield* Fiber.interrupt(runner)

        const expected = yield* cursorOrder(["w0", "w1", "w2"])
        assert.strictEqual(expected.length, 4 * 375)
        assert.strictEqual(new Set(delivered).size, delivered.length, "no event delivered twice")
        assert.deepStrictEqual(delivered, expected)

        // The checkpoint is on the primary, at the last event delivered.
        const sql = yield* SqlClient.SqlClient
        const t = yield* PgSchema.Tables
        const [checkpoint] = yield* sql<{ position: string }>`select position::text as position
        from ${sql(t.checkpoints)} where subscription = 'replica-sub'`
        assert.strictEqual(BigInt(checkpoint!.position), expected[expected.length - 1])
        // The replica refuses writes: nothing but reads could have gone there.
        const refused = yield* Effect.flip(
          replicaSql`update ${replicaSql(t.checkpoints)} set position = 0 where subscription = 'replica-sub'`
        )
        // 25006: read_only_sql_transaction ("cannot execute UPDATE in a read-only transaction").
        assert.strictEqual((refused.reason.cause as { readonly code?: string } | undefined)?.code, "25006")
      })
  )

  it.effect("a notification from the primary wakes the replica subscription once the replica has replayed", () =>
    Effect.gen(function* () {
      const store = yield* EventStore.EventStore
      const subs = yield* PgReplica.ReplicaSubscriptions
      const delivered: Array<bigint> = []
      // A poll far longer than the test's bound: only a wake-up can deliver in time.
      const runner = yield* subs
        .run("replica-wake", (event) => Effect.sync(() => delivered.push(event.position)), {
          categories: ["wake"],
          pollInterval: "20 seconds"
        })
        .pipe(Effect.forkChild)
      yield* subs.waitUntilCaughtUp("replica-wake", { timeout: "10 seconds" })
      for (let i = 0; i < 10; i++) {
        const { positions } = yield* store.append("wake-1", [{ type: "Ping", data: { i } }])
        yield* Effect.sync(() => delivered.includes(positions[0]!)).pipe(
          Effect.repeat({ until: (done: boolean) => done, schedule: Schedule.spaced("5 millis") }),
          Effect.timeout("3 seconds")
        )
      }
      yield* Fiber.interrupt(runner)
      assert.strictEqual(delivered.length, 10)
    })
  )

  it.effect("gap-free on the standby: transactions that commit after a later one are not skipped", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const t = yield* PgSchema.Tables
      const store = yield* EventStore.EventStore
      const reads = yield* PgReplica.ReplicaReads
      const subs = yield* PgReplica.ReplicaSubscriptions
      const { sql: replicaSql } = yield* PgReplica.Replica
      const delivered: Array<bigint> = []
      const runner = yield* subs
        .run("replica-gap", (event) => Effect.sync(() => delivered.push(event.position)), {
          categories: ["gap"],
          pollInterval: "20 millis"
        })
        .pipe(Effect.forkChild)
      yield* store.append("gap-0", [{ type: "Before", data: {} }])
      yield* subs.waitUntilCaughtUp("replica-gap", { timeout: "10 seconds" })
      assert.strictEqual(delivered.length, 1)

      // `early` writes the lowest position and stays open; `idFirst` takes its transaction id and writes nothing yet
      // (so no WAL names its id before `late` commits); `late` commits a higher position meanwhile.
      const early = yield* Connection.reserve(sql)
      yield* early.query("begin", sql`begin`)
      yield* early.query(
        "insert",
        sql`insert into ${sql(t.events)} (stream, category, stream_version, event_id, event_type, data, recorded_at,
            transaction_id)
          values ('gap-1', 'gap', 1, gen_random_uuid(), 'Early', '{}', now(), pg_current_xact_id())`
      )
      const idFirst = yield* Connection.reserve(sql)
      yield* idFirst.query("begin", sql`begin`)
      yield* idFirst.query("take an id", sql`select pg_current_xact_id()::text as id`)
      yield* store.append("gap-2", [{ type: "Late", data: {} }])
      yield* PgReplica.caughtUp()

      // The replica has `Late` (a position cursor would pass `Early`'s position now), but the gap-free read holds it
      // back behind the transactions still open on the primary.
      const visible = yield* Stream.runCollect(reads.readCategories(["gap"]))
      assert.deepStrictEqual(
        visible.map((event) => event.type),
        ["Before", "Late"]
      )
      const readerSettings: Reader.PageSettings = {
        sql: replicaSql,
        t,
        connection: yield* Connection.reserve(replicaSql),
        where: filterFragment(replicaSql, { categories: ["gap"] }, 1, 0),
        batchSize: 100,
        columns: EventRow.columnsOf(replicaSql)
      }
      const after = { tx: visible[0]!.transactionId, pos: visible[0]!.position }
      assert.deepStrictEqual(yield* Reader.readPage(readerSettings, after), [])
      // Let the running subscription read the replica after `Late` was replayed: it delivered nothing more.
      yield* waitForReadAfter(replicaSql)
      assert.strictEqual(delivered.length, 1)

      yield* idFirst.query(
        "insert",
        sql`insert into ${sql(t.events)} (stream, category, stream_version, event_id, event_type, data, recorded_at,
            transaction_id)
          values ('gap-3', 'gap', 1, gen_random_uuid(), 'IdFirst', '{}', now(), pg_current_xact_id())`
      )
      yield* idFirst.query("commit", sql`commit`)
      yield* early.query("commit", sql`commit`)
      yield* subs.waitUntilCaughtUp("replica-gap", { timeout: "10 seconds" })
      yield* Fiber.interrupt(runner)

      const expected = yield* cursorOrder(["gap"])
      assert.strictEqual(expected.length, 4)
      assert.deepStrictEqual(delivered, expected)
      const types = yield* sql<{ type: string }>`select event_type as type from ${sql(t.events)}
        where category = 'gap' order by transaction_id, position`
      assert.deepStrictEqual(
        types.map((row) => row.type),
        ["Before", "Early", "IdFirst", "Late"]
      )
      // `Early` has a lower position than `Late`, and committed after it.
      const byType = new Map(visible.map((event) => [event.type, event.position]))
      assert.isTrue(expected[1]! < byType.get("Late")!)
    }).pipe(Effect.scoped)
  )
})

// A parameter, so that the statement looking for it does not match itself.
const readPattern = "%pg_snapshot_xmin(pg_current_snapshot())%order by e.transaction_id%"

/**
 * Waits until a session on the replica has finished a gap-free read that started after now: the running
 * subscription's reader (its statement is the last one its idle backend ran).
 */
const waitForReadAfter = (replicaSql: SqlClient.SqlClient) =>
  Effect.gen(function* () {
    const [now] = yield* replicaSql<{ now: string }>`select clock_timestamp()::text as now`
    yield* Effect.repeat(
      replicaSql<{ n: number }>`select count(*)::int as n from pg_stat_activity
        where state = 'idle' and query_start > ${now!.now}::timestamptz
          and query like ${readPattern}`,
      { until: (rows) => rows[0]!.n > 0, schedule: Schedule.spaced("5 millis") }
    ).pipe(Effect.timeout("10 seconds"))
  })
