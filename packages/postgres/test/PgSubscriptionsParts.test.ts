import { assert, describe, it as vitest, layer } from "@effect/vitest"
import * as SubscriptionLifecycle from "@evently/store/SubscriptionLifecycle"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as SqlClient from "effect/sql/SqlClient"
import * as Checkpoint from "../src/internal/subscriptions/checkpoint.ts"
import * as Connection from "../src/internal/subscriptions/connection.ts"
import * as Lease from "../src/internal/subscriptions/lease.ts"
import { layerSubscriptions } from "./helpers.ts"

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
})
