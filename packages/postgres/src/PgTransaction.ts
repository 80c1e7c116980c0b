/**
 * Transactions whose every failure is typed. `sql.withTransaction` from `effect/sql` turns a failed `ROLLBACK` (the
 * connection died under the transaction, so the rollback cannot be sent) into a defect, which no `catchTag` sees and
 * which ends a fiber that meant to reconnect and retry. `withTransaction` here runs the same transaction and reports
 * that failure as the typed `SqlError` it is (its reason a `ConnectionError`): the transaction was not committed,
 * which is all a caller needs to know. evently runs every transaction of its own through it; use it for yours.
 *
 * @since 0.2.0
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as SqlClient from "effect/sql/SqlClient"
import * as SqlError from "effect/sql/SqlError"

const isSqlDefect = <E>(reason: Cause.Reason<E>): reason is Cause.Die =>
  Cause.isDieReason(reason) && SqlError.isSqlError(reason.defect)

// When the ROLLBACK (or the clean-up after a failed COMMIT) fails, `sql.withTransaction` dies with that SqlError and
// turns the body's own typed failure into a defect as well. Put back the body's cause as it was, and add the
// SqlError as a typed failure.
const typedFailure = <E>(
  cause: Cause.Cause<E>,
  body: Cause.Cause<E> | undefined
): Cause.Cause<E | SqlError.SqlError> => {
  const sqlDefects = cause.reasons.filter(isSqlDefect)
  if (sqlDefects.length === 0) return cause
  const asFailures = Cause.fromReasons(
    sqlDefects.map((reason) => Cause.makeFailReason(reason.defect as SqlError.SqlError))
  )
  return body === undefined
    ? Cause.fromReasons(
        cause.reasons.map((reason) =>
          isSqlDefect(reason) ? Cause.makeFailReason<E | SqlError.SqlError>(reason.defect as SqlError.SqlError) : reason
        )
      )
    : Cause.combine(body, asFailures)
}

/**
 * Runs `effect` in a transaction of the `SqlClient` in context (a savepoint when one is already open), like
 * `sql.withTransaction`, except that a `SqlError` raised while rolling back, or while cleaning up after a failed
 * `COMMIT`, fails the effect with that `SqlError` instead of killing the fiber. Nothing is committed in either case.
 *
 * @example
 * ```ts
 * import { PgTransaction } from "@evently/postgres"
 * import { EventStore, ExpectedVersion } from "@evently/store"
 * import * as Effect from "effect/Effect"
 * import * as SqlClient from "effect/sql/SqlClient"
 *
 * const program = Effect.gen(function* () {
 *   const sql = yield* SqlClient.SqlClient
 *   const store = yield* EventStore.EventStore
 *   yield* PgTransaction.withTransaction(
 *     Effect.gen(function* () {
 *       yield* sql`update accounts set open = false where id = ${"42"}`
 *       yield* store.append("account-42", [], { expected: ExpectedVersion.Any })
 *     })
 *   )
 * })
 * ```
 *
 * @since 0.2.0
 * @category transactions
 */
export const withTransaction = <A, E, R>(
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E | SqlError.SqlError, R | SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    return yield* withTransactionOn(sql, effect)
  })

/**
 * {@link withTransaction} on a given client.
 *
 * @since 0.2.0
 * @category transactions
 */
export const withTransactionOn = <A, E, R>(
  sql: SqlClient.SqlClient,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E | SqlError.SqlError, R> =>
  Effect.suspend(() => {
    let body: Cause.Cause<E> | undefined
    return sql
      .withTransaction(
        Effect.onError(effect, (cause) =>
          Effect.sync(() => {
            body = cause
          })
        )
      )
      .pipe(Effect.catchCause((cause) => Effect.failCause(typedFailure(cause, body))))
  })
