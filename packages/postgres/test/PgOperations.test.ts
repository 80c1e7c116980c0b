import { assert, layer } from "@effect/vitest"
import { PgSchema } from "@evently/postgres"
import * as PgOperations from "@evently/postgres/PgOperations"
import { Subscriptions } from "@evently/store"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as SqlClient from "effect/sql/SqlClient"
import { ownClient } from "./faults.ts"
import { insertEvents, layerSubscriptions } from "./helpers.ts"

const partitionsOf = (name: string) =>
  Effect.map(PgOperations.status, (report) => report.partitions.filter((p) => p.subscription === name))

const checkpointOf = (name: string, partition = 0) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{ tx: string; pos: bigint }>`select transaction_id::text as tx, position as pos
      from evently_checkpoints where subscription = ${name} and partition = ${partition}`
    return { tx: BigInt(row!.tx), pos: BigInt(row!.pos) }
  })

layer(layerSubscriptions(), { excludeTestServices: true, timeout: "60 seconds" })("PgOperations", (it) => {
  it.effect("status: the worker holding a partition while it runs, then the lag it leaves when it stops", () =>
    Effect.gen(function* () {
      yield* insertEvents("opsa-1", 4)
      const own = yield* Layer.build(yield* ownClient("ops-worker"))
      const subs = Context.get(own, Subscriptions.Subscriptions)
      const worker = yield* subs.run("opsa", () => Effect.void, { categories: ["opsa"] }).pipe(Effect.forkScoped)
      yield* subs.waitUntilCaughtUp("opsa")
      const [running] = yield* partitionsOf("opsa")
      assert.strictEqual(running!.worker?.applicationName, "ops-worker")
      assert.strictEqual(running!.lagEvents, 0)
      yield* Fiber.interrupt(worker)
      // Not matching the filter: never lag.
      yield* insertEvents("other-1", 5)
      const positions = yield* insertEvents("opsa-2", 3)
      const sql = yield* SqlClient.SqlClient
      yield* sql`update evently_events set recorded_at = now() - interval '90 seconds' where position = ${positions[0]!}`
      const [stopped] = yield* partitionsOf("opsa")
      assert.isUndefined(stopped!.worker)
      assert.strictEqual(stopped!.lagEvents, 3)
      assert.isAtLeast(stopped!.lagSeconds, 90)
      assert.isBelow(stopped!.lagSeconds, 150)
      assert.deepStrictEqual(stopped!.categories, ["opsa"])
      assert.strictEqual(stopped!.checkpoint.position, (yield* checkpointOf("opsa")).pos)
    }).pipe(Effect.scoped)
  )

  it.effect("status: an open transaction older than committed events is named, with the events it holds back", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const held = yield* sql.reserve
        yield* held.executeUnprepared("begin", [], undefined)
        const [holder] = yield* held.executeUnprepared(
          "select pg_backend_pid() as pid, pg_current_xact_id()::text as xid",
          [],
          undefined
        )
        yield* insertEvents("opsx-1", 2)
        const report = yield* PgOperations.status
        const mine = holder as { pid: number; xid: string }
        // The oldest running transaction of the cluster: this one, unless another test's began before it.
        const holding = report.xminHolder!
        assert.isTrue(
          holding.pid === mine.pid || BigInt(holding.transactionId) < BigInt(mine.xid) % 4294967296n,
          `holder ${holding.pid} (xid ${holding.transactionId}), this transaction ${mine.pid} (xid ${mine.xid})`
        )
        assert.isAtLeast(holding.heldEvents, 2)
        yield* held.executeUnprepared("rollback", [], undefined)
      })
    )
  )

  it.effect("retryParked moves a checkpoint back to just before the oldest retried event, never forward", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const subs = yield* Subscriptions.Subscriptions
      const positions = yield* insertEvents("opsp-1", 6)
      const failing = new Set([positions[1]!, positions[3]!])
      const worker = yield* subs
        .run("opsp", (event) => (failing.has(event.position) ? Effect.fail("boom") : Effect.void), {
          categories: ["opsp"],
          onError: Subscriptions.Skip
        })
        .pipe(Effect.forkScoped)
      yield* subs.waitUntilCaughtUp("opsp")
      yield* Fiber.interrupt(worker)
      const parked = yield* PgOperations.parked("opsp")
      assert.deepStrictEqual(
        parked.map((p) => p.position),
        [positions[1]!, positions[3]!]
      )
      assert.strictEqual((yield* partitionsOf("opsp"))[0]!.parked, 2)
      // Retry the later one only: back to just before it; the earlier parked row stays.
      const [first] = yield* PgOperations.retryParked("opsp", [parked[1]!.id])
      assert.strictEqual(first!.checkpoint.position, positions[3]! - 1n)
      assert.strictEqual(first!.redeliver, 3)
      assert.deepStrictEqual(
        (yield* PgOperations.parked("opsp")).map((p) => p.id),
        [parked[0]!.id]
      )
      const cursor = yield* checkpointOf("opsp")
      assert.strictEqual(cursor.pos, positions[3]! - 1n)
      // A checkpoint already before the retried event stays where it is.
      yield* sql`update evently_checkpoints set position = 0, transaction_id = '0'::xid8 where subscription = 'opsp'`
      const [second] = yield* PgOperations.retryParked("opsp")
      assert.strictEqual(second!.checkpoint.position, 0n)
      assert.strictEqual(second!.redeliver, 6)
      assert.deepStrictEqual(yield* PgOperations.parked("opsp"), [])
      // The worker delivers the retried events again.
      const seen: Array<bigint> = []
      const again = yield* subs
        .run("opsp", (event) => Effect.sync(() => seen.push(event.position)), { categories: ["opsp"] })
        .pipe(Effect.forkScoped)
      yield* subs.waitUntilCaughtUp("opsp")
      yield* Fiber.interrupt(again)
      assert.deepStrictEqual(seen, positions)
    }).pipe(Effect.scoped)
  )

  it.effect("dropParked deletes the rows it is given, or all of a subscription's", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const insert = (name: string) => sql`insert into evently_parked
          (subscription, partition, position, transaction_id, event_id, stream, event_type, error)
        values (${name}, 0, 1, '1'::xid8, gen_random_uuid(), 'x-1', 'T', 'boom') returning id`
      yield* insert("opsd")
      yield* insert("opsd")
      yield* insert("opsd-other")
      const rows = yield* PgOperations.parked("opsd")
      assert.deepStrictEqual(yield* PgOperations.dropParked("opsd", [rows[0]!.id]), [rows[0]!.id])
      assert.deepStrictEqual(yield* PgOperations.dropParked("opsd"), [rows[1]!.id])
      assert.strictEqual((yield* PgOperations.parked("opsd-other")).length, 1)
    })
  )

  it.effect("pendingMigrations: every statement on a fresh schema without creating anything, none once migrated", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      assert.deepStrictEqual(yield* PgOperations.pendingMigrations, [])
      const fresh = yield* PgOperations.pendingMigrations.pipe(Effect.provide(PgSchema.layerTables("opsfresh_")))
      assert.deepStrictEqual(
        fresh.map((m) => `${m.id}_${m.name}`),
        Object.keys(PgSchema.migrations).map((key) => key.replace(/^0+/, ""))
      )
      assert.match(fresh[0]!.statements[1]!, /create table "opsfresh_events"/)
      assert.match(fresh[3]!.statements[0]!, /alter table "opsfresh_streams" add column last_transaction_id xid8/)
      const [exists] = yield* sql<{
        n: number
      }>`select count(*)::int as n from pg_class where relname like 'opsfresh_%'`
      assert.strictEqual(exists!.n, 0)
    })
  )

  it.effect("readPage: a damaged row in its place, and the rows after it", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const positions = yield* insertEvents("opsr-1", 3)
      yield* sql`update evently_events set metadata = 'null'::jsonb where position = ${positions[1]!}`
      const page = yield* PgOperations.readPage(positions[0]! - 1n, 3)
      assert.deepStrictEqual(
        page.map((r) => r.position),
        positions
      )
      assert.deepStrictEqual(
        page.map((r) => Result.isSuccess(r.row)),
        [true, false, true]
      )
    })
  )
})
