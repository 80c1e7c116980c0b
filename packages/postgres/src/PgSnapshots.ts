/**
 * The Postgres snapshot store: one row per stream in `Tables.snapshots` holding the newest snapshot (an older one
 * never replaces a newer one, even when two writers race).
 *
 * @since 0.1.0
 */
import { EventStore, Snapshots } from "@evently/store"
import * as Clock from "effect/Clock"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as SqlClient from "effect/sql/SqlClient"
import type * as SqlError from "effect/sql/SqlError"
import * as PgSchema from "./PgSchema.ts"

const storeError = (operation: string) => (cause: SqlError.SqlError) => new EventStore.StoreError({ operation, cause })

/**
 * Builds the snapshot store on the ambient `SqlClient` (run `PgSchema.migrate` first).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<Snapshots.Snapshots["Service"], never, SqlClient.SqlClient> = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const tables = yield* PgSchema.Tables

  const load = Effect.fn("PgSnapshots.load")(function* (stream: string) {
    const rows = yield* sql<{ readonly version: number; readonly schema_version: number; readonly state: string }>`
      select version::int4 as version, schema_version, state::text as state
      from ${sql(tables.snapshots)} where stream = ${stream}::text`.pipe(Effect.mapError(storeError("snapshot load")))
    return Option.map(Option.fromUndefinedOr(rows[0]), (row): Snapshots.Snapshot => ({
      stream,
      version: row.version,
      schemaVersion: row.schema_version,
      state: JSON.parse(row.state)
    }))
  })

  const save = Effect.fn("PgSnapshots.save")(function* (snapshot: Snapshots.Snapshot) {
    const json = yield* Snapshots.stateJson(snapshot)
    const createdAt = DateTime.formatIso(DateTime.makeUnsafe(yield* Clock.currentTimeMillis))
    yield* sql`
      insert into ${sql(tables.snapshots)} (stream, version, schema_version, state, created_at)
      values (${snapshot.stream}::text, ${snapshot.version}::int8, ${snapshot.schemaVersion}::int4,
        ${json}::jsonb, ${createdAt}::timestamptz)
      on conflict (stream) do update set
        version = excluded.version, schema_version = excluded.schema_version,
        state = excluded.state, created_at = excluded.created_at
      where ${sql(tables.snapshots)}.version <= excluded.version`.pipe(Effect.mapError(storeError("snapshot save")))
  })

  return Snapshots.Snapshots.of({ load, save })
})

/**
 * The Postgres snapshot store on the `SqlClient` in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Snapshots.Snapshots, never, SqlClient.SqlClient> = Layer.effect(
  Snapshots.Snapshots,
  make
)
