import { PgSchema, PgSubscriptions } from "@evently/postgres"
import { TestDatabase } from "@evently/testing"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as SqlClient from "effect/sql/SqlClient"

/**
 * A database of its own, migrated, with the Postgres subscriptions on it (short lock and reconnect intervals).
 */
export const layerSubscriptions = (maxConnections = 40) =>
  PgSubscriptions.layer({ lockRetryInterval: "100 millis", reconnectDelay: "100 millis" }).pipe(
    Layer.provideMerge(
      PgSchema.layerMigrate.pipe(Layer.orDie, Layer.provideMerge(TestDatabase.layer({ maxConnections })))
    )
  )

/**
 * Appends `count` events to `stream` in one transaction with raw SQL, then NOTIFYs once, as the store's append
 * does; `sleepMillis` holds the transaction open before COMMIT (to commit out of position order).
 */
export const insertEvents = (
  stream: string,
  count: number,
  options: { readonly type?: string; readonly sleepMillis?: number } = {}
) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const t = yield* PgSchema.Tables
    const category = stream.slice(0, stream.indexOf("-"))
    return yield* sql.withTransaction(
      Effect.gen(function* () {
        const rows = yield* sql<{ position: bigint }>`
          insert into ${sql(t.events)} (stream, category, stream_version, event_id, event_type, data, recorded_at)
          select ${stream}, ${category},
            coalesce((select max(stream_version) from ${sql(t.events)} where stream = ${stream}), 0) + g,
            gen_random_uuid(), ${options.type ?? "Happened"}, jsonb_build_object('n', g), now()
          from generate_series(1, ${count}::int) g
          returning position`
        if (options.sleepMillis !== undefined && options.sleepMillis > 0) {
          yield* sql`select pg_sleep(${options.sleepMillis / 1000}::float8)`
        }
        yield* sql`select pg_notify(${t.events}, ${category})`
        return rows.map((row) => BigInt(row.position))
      })
    )
  })

/**
 * Every position of a category, in position order.
 */
export const positionsOf = (category: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const t = yield* PgSchema.Tables
    const rows = yield* sql<{ position: bigint }>`
      select position from ${sql(t.events)} where category = ${category} order by position`
    return rows.map((row) => BigInt(row.position))
  })
