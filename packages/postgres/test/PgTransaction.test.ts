import { assert, layer } from "@effect/vitest"
import { PgTransaction } from "@evently/postgres"
import { Faults } from "@evently/store"
import { TestDatabase } from "@evently/testing"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as SqlClient from "effect/sql/SqlClient"
import * as SqlError from "effect/sql/SqlError"

// The transaction's own backend is terminated under it: the statement fails, and the ROLLBACK cannot be sent.
const killOwnBackend = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`create temporary table if not exists scratch (n int)`
  yield* sql`insert into scratch values (1)`
  yield* sql`select pg_terminate_backend(pg_backend_pid())`
})

layer(TestDatabase.layer({ maxConnections: 4 }), { excludeTestServices: true, timeout: "60 seconds" })(
  "PgTransaction",
  (it) => {
    it.effect("sql.withTransaction turns a rollback on a dead connection into a defect (why the helper exists)", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const exit = yield* Effect.exit(sql.withTransaction(killOwnBackend))
        assert.isTrue(Exit.isFailure(exit))
        if (Exit.isFailure(exit)) assert.isTrue(Cause.hasDies(exit.cause))
      })
    )

    it.effect("withTransaction fails with a typed, transient SqlError instead, and the next transaction works", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const exit = yield* Effect.exit(PgTransaction.withTransaction(killOwnBackend))
        assert.isTrue(Exit.isFailure(exit))
        if (Exit.isFailure(exit)) {
          assert.isFalse(Cause.hasDies(exit.cause))
          const errors = exit.cause.reasons.filter(Cause.isFailReason).map((reason) => reason.error)
          assert.isAbove(errors.length, 0)
          assert.isTrue(errors.every((error) => SqlError.isSqlError(error) && Faults.isTransient(error)))
        }
        const [row] = yield* PgTransaction.withTransaction(sql<{ n: number }>`select 1 as n`)
        assert.strictEqual(row!.n, 1)
      })
    )

    it.effect("a body's own typed failure stays typed when the rollback after it fails", () =>
      Effect.gen(function* () {
        const failure = { _tag: "BodyFailed" } as const
        const exit = yield* Effect.exit(
          PgTransaction.withTransaction(killOwnBackend.pipe(Effect.mapError(() => failure)))
        )
        assert.isTrue(Exit.isFailure(exit))
        if (Exit.isFailure(exit)) {
          assert.isFalse(Cause.hasDies(exit.cause))
          const errors = exit.cause.reasons.filter(Cause.isFailReason).map((reason) => reason.error)
          assert.include(errors, failure)
          assert.isTrue(errors.some((error) => SqlError.isSqlError(error) && Faults.isTransient(error)))
        }
      })
    )

    it.effect("commits on success and rolls back on a typed failure, like sql.withTransaction", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`create table kept (n int)`
        yield* PgTransaction.withTransaction(sql`insert into kept values (1)`)
        const failed = yield* Effect.flip(
          PgTransaction.withTransaction(Effect.andThen(sql`insert into kept values (2)`, Effect.fail("no")))
        )
        assert.strictEqual(failed, "no")
        // Nested: a savepoint; its failure undoes only its own writes.
        yield* PgTransaction.withTransaction(
          Effect.gen(function* () {
            yield* sql`insert into kept values (3)`
            yield* Effect.ignore(
              PgTransaction.withTransaction(Effect.andThen(sql`insert into kept values (4)`, Effect.fail("inner")))
            )
          })
        )
        const rows = yield* sql<{ n: number }>`select n from kept order by n`
        assert.deepStrictEqual(
          rows.map((row) => row.n),
          [1, 3]
        )
      })
    )
  }
)
