/**
 * Where a new checkpoint starts, resolved in this database.
 */
import * as Subscriptions from "@evently/store/Subscriptions"
import * as Effect from "effect/Effect"
import type * as SqlClient from "effect/sql/SqlClient"
import type * as PgSchema from "../../PgSchema.ts"
import { type Cursor, storage } from "./cursor.ts"

/**
 * The cursor of `start`. A transaction id given with `After` must be one this cluster has reached: a later one would
 * be trusted now and refused as "from the future" on the next start.
 */
export const resolve = Effect.fnUntraced(function* (
  sql: SqlClient.SqlClient,
  t: PgSchema.TableNames,
  name: string,
  start: Subscriptions.Start
) {
  switch (start._tag) {
    case "Beginning":
      return { tx: 0n, pos: 0n } satisfies Cursor
    case "End": {
      const [row] = yield* sql<{ tx: string }>`select pg_snapshot_xmin(pg_current_snapshot())::text as tx`.pipe(
        Effect.mapError(storage("resolve start"))
      )
      return { tx: BigInt(row!.tx), pos: 0n } satisfies Cursor
    }
    case "After": {
      if (start.transactionId !== undefined) {
        const [row] = yield* sql<{ xmax: string }>`select pg_snapshot_xmax(pg_current_snapshot())::text as xmax`.pipe(
          Effect.mapError(storage("resolve start"))
        )
        if (start.transactionId > BigInt(row!.xmax)) {
          return yield* new Subscriptions.InvalidSubscription({
            subscription: name,
            reason: `start After(${start.position}, ${start.transactionId}) names a transaction id this cluster has not reached (its next is ${row!.xmax})`
          })
        }
        return { tx: start.transactionId, pos: start.position } satisfies Cursor
      }
      const [row] = yield* sql<{ tx: string }>`select coalesce(
          (select transaction_id::text from ${sql(t.events)} where position = ${start.position}), '0') as tx`.pipe(
        Effect.mapError(storage("resolve start"))
      )
      return { tx: BigInt(row!.tx), pos: start.position } satisfies Cursor
    }
  }
})
