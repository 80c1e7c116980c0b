/**
 * The connection a worker's session holds: its lock, its reads and its plain commits all go through it, so a worker
 * whose connection dies can neither read nor commit any more, and its lock is gone with it. Its statements take turns,
 * and the one that waited goes next: a fiber whose statement finished yields before its own work.
 */
import type * as Subscriptions from "@evently/store/Subscriptions"
import * as Effect from "effect/Effect"
import * as Semaphore from "effect/Semaphore"
import type * as SqlClient from "effect/sql/SqlClient"
import type * as SqlError from "effect/sql/SqlError"
import type * as Statement from "effect/sql/Statement"
import { storage } from "./cursor.ts"

/**
 * A held connection: its statements run one at a time, and fail as storage faults named by `operation`. `values`
 * returns each row as its columns' values in order (no object per row).
 */
export interface SessionConnection {
  readonly query: <A>(
    operation: string,
    statement: Statement.Statement<A>
  ) => Effect.Effect<ReadonlyArray<A>, Subscriptions.SubscriptionStorageError>
  readonly values: (
    operation: string,
    statement: Statement.Statement<unknown>
  ) => Effect.Effect<ReadonlyArray<ReadonlyArray<unknown>>, Subscriptions.SubscriptionStorageError>
}

/** Reserves a connection of the pool until the scope closes. */
export const reserve = Effect.fnUntraced(function* (sql: SqlClient.SqlClient) {
  const connection = yield* sql.reserve.pipe(Effect.mapError(storage("connect")))
  const mutex = yield* Semaphore.make(1)
  // `yieldNow` once the connection is free: a statement waiting for it (a commit behind the read ahead, or the next
  // read behind a commit) goes on the wire before this fiber decodes or handles what it got, so that the server works
  // while the client does. Without it the connection sat idle through each page's decoding.
  const inTurn = <A>(operation: string, run: Effect.Effect<A, SqlError.SqlError>) =>
    mutex.withPermit(run).pipe(Effect.tap(Effect.yieldNow), Effect.mapError(storage(operation)))
  return {
    query: <A>(operation: string, statement: Statement.Statement<A>) => {
      const [text, params] = statement.compile()
      return inTurn(operation, connection.execute(text, params, undefined)) as Effect.Effect<
        ReadonlyArray<A>,
        Subscriptions.SubscriptionStorageError
      >
    },
    values: (operation: string, statement: Statement.Statement<unknown>) => {
      const [text, params] = statement.compile()
      return inTurn(operation, connection.executeValues(text, params))
    }
  } satisfies SessionConnection
})
