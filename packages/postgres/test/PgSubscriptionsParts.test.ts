import { assert, describe, it as vitest, layer } from "@effect/vitest"
import * as Subscriptions from "@evently/store/Subscriptions"
import * as SubscriptionLifecycle from "@evently/store/SubscriptionLifecycle"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as SqlClient from "effect/sql/SqlClient"
import * as EventRow from "../src/internal/eventRow.ts"
import * as Checkpoint from "../src/internal/subscriptions/checkpoint.ts"
import * as Committer from "../src/internal/subscriptions/committer.ts"
import * as Connection from "../src/internal/subscriptions/connection.ts"
import { filterFragment } from "../src/internal/subscriptions/cursor.ts"
import * as Lease from "../src/internal/subscriptions/lease.ts"
import * as Reader from "../src/internal/subscriptions/reader.ts"
import { PgSchema } from "@evently/postgres"
import { insertEvents, layerSubscriptions } from "./helpers.ts"

// The parts of a Postgres subscription session, each on its own.

describe("PgSubscriptions parts: checkpoint validation", () => {
  vitest(
    "a checkpoint from another cluster, or with a transaction id not below this cluster's next, is refused",
    () => {
      const row = { tx: "100", system: "7", current: "7", xmax: "500" }
      assert.isUndefined(Checkpoint.validationProblem(row))
      assert.include(Checkpoint.validationProblem({ ...row, system: "8" }), "written by database cluster 8")
      assert.include(Checkpoint.validationProblem({ ...row, tx: "500" }), "transaction ids went backwards")
      // Compared as numbers, not as text ("99" < "100").
      assert.isUndefined(Checkpoint.validationProblem({ ...row, tx: "99", xmax: "100" }))
    }
  )
})

layer(layerSubscriptions(), { excludeTestServices: true, timeout: "60 seconds" })("PgSubscriptions parts", (it) => {
  it.effect("lease: a second session stands by, naming the holder's backend pid, until the first lets go", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      // Two workers as if in two processes: each has its own in-process leases.
      const settings = (): Lease.LeaseSettings => ({
        sql,
        localLeases: SubscriptionLifecycle.makeLocalLeases(),
        retry: Duration.millis(20)
      })
      const first = yield* Scope.make()
      const holder = yield* Connection.reserve(sql).pipe(Scope.provide(first))
      yield* Lease.take(settings(), holder, "leased", 1).pipe(Scope.provide(first))
      const [{ pid }] = yield* holder.query<{ pid: number }>("pid", sql`select pg_backend_pid() as pid`)

      const waiting = yield* Deferred.make<number | undefined>()
      const taken = yield* Deferred.make<void>()
      const signals: SubscriptionLifecycle.Signals = {
        ...SubscriptionLifecycle.SessionSignals.defaultValue(),
        active: true,
        leaseWaiting: (heldBy) => Deferred.succeed(waiting, heldBy).pipe(Effect.asVoid),
        leaseTaken: Deferred.succeed(taken, undefined).pipe(Effect.asVoid)
      }
      const second = yield* Effect.gen(function* () {
        const connection = yield* Connection.reserve(sql)
        yield* Lease.take(settings(), connection, "leased", 1)
        return yield* Effect.never
      }).pipe(Effect.scoped, Effect.provideService(SubscriptionLifecycle.SessionSignals, signals), Effect.forkChild)

      assert.strictEqual(yield* Deferred.await(waiting), pid)
      // Still held by the first session: the second cannot have it.
      assert.isFalse(yield* Deferred.isDone(taken))
      const [lock] = yield* sql<{ pid: number }>`select pid from pg_locks
        where locktype = 'advisory' and granted and objid = 1 and classid = hashtext(${Lease.lockKey("leased")})::oid`
      assert.strictEqual(lock?.pid, pid)

      yield* Scope.close(first, Exit.void)
      yield* Deferred.await(taken)
      const [next] = yield* sql<{ pid: number }>`select pid from pg_locks
        where locktype = 'advisory' and granted and objid = 1 and classid = hashtext(${Lease.lockKey("leased")})::oid`
      assert.notStrictEqual(next?.pid, pid)
      yield* Fiber.interrupt(second)
    })
  )

  it.effect("lease: a second worker of this process stands by on the in-process lock, without a pid", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const settings: Lease.LeaseSettings = {
        sql,
        localLeases: SubscriptionLifecycle.makeLocalLeases(),
        retry: Duration.millis(20)
      }
      const first = yield* Scope.make()
      yield* Lease.take(settings, yield* Connection.reserve(sql).pipe(Scope.provide(first)), "local", 0).pipe(
        Scope.provide(first)
      )
      const waits: Array<number | undefined> = []
      const taken = yield* Deferred.make<void>()
      const signals: SubscriptionLifecycle.Signals = {
        ...SubscriptionLifecycle.SessionSignals.defaultValue(),
        active: true,
        leaseWaiting: (heldBy) => Effect.sync(() => waits.push(heldBy)),
        leaseTaken: Deferred.succeed(taken, undefined).pipe(Effect.asVoid)
      }
      const second = yield* Effect.gen(function* () {
        yield* Lease.take(settings, yield* Connection.reserve(sql), "local", 0)
        return yield* Effect.never
      }).pipe(Effect.scoped, Effect.provideService(SubscriptionLifecycle.SessionSignals, signals), Effect.forkChild)
      yield* Effect.repeat(
        Effect.sync(() => waits.length),
        { until: (n: number) => n > 0, schedule: Schedule.spaced("10 millis") }
      )
      assert.deepStrictEqual(waits, [undefined])
      assert.isFalse(yield* Deferred.isDone(taken))
      yield* Scope.close(first, Exit.void)
      yield* Deferred.await(taken)
      assert.deepStrictEqual(waits, [undefined])
      yield* Fiber.interrupt(second)
    })
  )

  it.effect("committer: a failed commit poisons it; later commits fail at once without touching the checkpoint", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const advanced: Array<bigint> = []
      let failNext = false
      const checkpoints: Checkpoint.CheckpointStore = {
        initial: { tx: 1n, pos: 0n },
        advance: (_from, to) =>
          Effect.suspend(() => {
            if (failNext) return Effect.fail(new Subscriptions.LeaseLost({ subscription: "c", partition: 0 }))
            advanced.push(to.pos)
            return Effect.void
          }),
        advanceInTransaction: () => Effect.void,
        committed: () => {},
        park: () => Effect.void
      }
      const session = yield* Scope.make()
      const committer = yield* Committer.make(sql, checkpoints, { subscription: "c", partition: "0" }).pipe(
        Scope.provide(session)
      )
      yield* committer.commit({ tx: 1n, pos: 5n }, 5)
      // A batch at or before the committed checkpoint commits nothing.
      yield* committer.commit({ tx: 1n, pos: 3n }, 3)
      failNext = true
      assert.strictEqual((yield* Effect.flip(committer.commit({ tx: 1n, pos: 10n }, 5)))._tag, "LeaseLost")
      failNext = false
      // Poisoned: a batch read ahead does not commit over the one whose commit failed.
      assert.strictEqual((yield* Effect.flip(committer.commit({ tx: 1n, pos: 15n }, 5)))._tag, "LeaseLost")
      assert.deepStrictEqual(advanced, [5n])
      assert.deepStrictEqual(committer.committed(), { tx: 1n, pos: 5n })

      // The end of the session poisons a fresh committer too.
      const other = yield* Scope.make()
      const late = yield* Committer.make(
        sql,
        { ...checkpoints, initial: { tx: 1n, pos: 5n } },
        {
          subscription: "c",
          partition: "0"
        }
      ).pipe(Scope.provide(other))
      yield* Scope.close(other, Exit.void)
      const ended = yield* Effect.flip(late.commit({ tx: 1n, pos: 20n }, 5))
      assert.include(ended.message, "the session that read this batch has ended")
      assert.deepStrictEqual(advanced, [5n])
      yield* Scope.close(session, Exit.void)
    })
  )

  it.effect("reader: the count behind is what the reader can read now, never events behind an open transaction", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const t = yield* PgSchema.Tables
      const settings: Reader.PageSettings = {
        sql,
        t,
        connection: yield* Connection.reserve(sql),
        where: filterFragment(sql, { categories: ["rd"] }, 1, 0),
        batchSize: 100,
        columns: EventRow.columnsOf(sql)
      }
      const before = yield* insertEvents("rd-1", 5)
      // A transaction with an id, still open: what commits after it may sort before what it will write.
      const open = yield* Connection.reserve(sql)
      yield* open.query("begin", sql`begin`)
      yield* open.query("take an id", sql`select pg_current_xact_id()::text as id`)
      yield* insertEvents("rd-1", 3)
      const start = { tx: 0n, pos: 0n }
      assert.strictEqual(yield* Reader.countBehind(settings, start), 5)
      assert.deepStrictEqual(
        (yield* Reader.readPage(settings, start)).map((values) => BigInt(EventRow.fromValues(values).position)),
        before
      )
      yield* open.query("rollback", sql`rollback`)
      assert.strictEqual(yield* Reader.countBehind(settings, start), 8)
      assert.strictEqual((yield* Reader.readPage(settings, start)).length, 8)
    }).pipe(Effect.scoped)
  )

  it.effect("checkpoint: a plain commit does not wait for the WAL flush; a commit with the handler's writes does", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const t = yield* PgSchema.Tables
      // What each update of the checkpoint row commits with, recorded by a trigger in the updating transaction.
      yield* sql`create table commit_settings (id serial primary key, setting text not null)`
      yield* sql.unsafe(`create function record_commit_setting() returns trigger language plpgsql as $$
        begin insert into commit_settings (setting) values (current_setting('synchronous_commit')); return new; end $$`)
      yield* sql`create trigger record_commit_setting after update on ${sql(t.checkpoints)}
        for each row execute function record_commit_setting()`
      yield* Effect.addFinalizer(() =>
        Effect.ignore(
          Effect.andThen(
            sql`drop trigger record_commit_setting on ${sql(t.checkpoints)}`,
            sql`drop table commit_settings; drop function record_commit_setting()`.unprepared
          )
        )
      )
      const connection = yield* Connection.reserve(sql)
      const store = yield* Checkpoint.durable({ sql, t }, connection, "commit-setting", 0, {})
      const next = { tx: store.initial.tx, pos: store.initial.pos + 1n }
      yield* store.advance(store.initial, next)
      // Only that transaction: the next statement on the same connection commits as the server says.
      // The server's own setting (what a commit uses unless told otherwise): 'on' by default, but a server may differ.
      const [server] = yield* sql<{ setting: string }>`select current_setting('synchronous_commit') as setting`
      const [after] = yield* connection.query(
        "show",
        sql<{ setting: string }>`select current_setting('synchronous_commit') as setting`
      )
      assert.strictEqual(after!.setting, server!.setting)
      yield* sql.withTransaction(store.advanceInTransaction(next, { tx: next.tx, pos: next.pos + 1n }))
      const recorded = yield* sql<{ setting: string }>`select setting from commit_settings order by id`
      assert.deepStrictEqual(
        recorded.map((row) => row.setting),
        ["off", server!.setting]
      )
    }).pipe(Effect.scoped)
  )
})
