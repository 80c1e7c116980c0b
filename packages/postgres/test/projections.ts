/**
 * A table projection for the PgProjections tests: items are created and renamed; version 1 keeps each item's title
 * and rename count, version 2 also the title's length. The events are written with raw SQL in bulk (generate_series),
 * so that a log of 100,000 events takes a second.
 */
import { PgSchema } from "@evently/postgres"
import { EventCodec } from "@evently/store"
import * as Projection from "@evently/store/Projection"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as SqlClient from "effect/sql/SqlClient"

export const ItemEvents = Schema.TaggedUnion({
  Created: { title: Schema.String },
  Renamed: { title: Schema.String }
})
export const ItemCodec = EventCodec.make(ItemEvents)

const items = (version: number) =>
  Projection.make({
    name: "items",
    version,
    tables: {
      items: (sql, table) =>
        version === 1
          ? sql`create table ${sql(table)} (id text primary key, title text not null, renames int not null)`
          : sql`create table ${sql(table)} (id text primary key, title text not null, renames int not null,
              length int not null)`
    },
    sources: [
      Projection.on("item", ItemCodec, {
        Created: (event, ctx) =>
          Effect.flatMap(SqlClient.SqlClient, (sql) =>
            version === 1
              ? sql`insert into ${sql(ctx.tables.items!)} (id, title, renames)
                  values (${ctx.recorded.stream}, ${event.title}, 0)`
              : sql`insert into ${sql(ctx.tables.items!)} (id, title, renames, length)
                  values (${ctx.recorded.stream}, ${event.title}, 0, ${event.title.length})`
          ),
        Renamed: (event, ctx) =>
          Effect.flatMap(SqlClient.SqlClient, (sql) =>
            version === 1
              ? sql`update ${sql(ctx.tables.items!)} set title = ${event.title}, renames = renames + 1
                  where id = ${ctx.recorded.stream}`
              : sql`update ${sql(ctx.tables.items!)} set title = ${event.title}, renames = renames + 1,
                  length = ${event.title.length} where id = ${ctx.recorded.stream}`
          )
      })
    ]
  })

export const ItemsV1 = items(1)
export const ItemsV2 = items(2)

/**
 * Creates items `from` to `to` (`item-<n>`, titled `t<n>`) in one transaction, then renames each once in another
 * when `rename` is set; NOTIFYs like an append. Two events per item with `rename`.
 */
export const writeItems = (from: number, to: number, options: { readonly rename?: boolean } = {}) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const t = yield* PgSchema.Tables
    const write = (type: string, version: number, title: string) =>
      sql.withTransaction(
        Effect.andThen(
          sql`insert into ${sql(t.events)} (stream, category, stream_version, event_id, event_type, data, recorded_at)
            select 'item-' || g, 'item', ${version}, gen_random_uuid(), ${type},
              jsonb_build_object('title', ${title} || g), now()
            from generate_series(${from}::int, ${to}::int) g`,
          sql`select pg_notify(${t.events}, 'item')`
        )
      )
    yield* write("Created", 1, "t")
    if (options.rename === true) yield* write("Renamed", 2, "renamed ")
  })

/** The items table as a from-scratch fold of the log computes it: id, last title, renames. */
export const expectedItems = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const t = yield* PgSchema.Tables
  return yield* sql<{ id: string; title: string; renames: number }>`
    select stream as id,
      (array_agg(data->>'title' order by stream_version desc))[1] as title,
      (count(*) filter (where event_type = 'Renamed'))::int as renames
    from ${sql(t.events)} where category = 'item' group by stream order by stream`
})

/** The rows of a table (or view) of the items projection, by id. */
export const itemsOf = (table: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    return yield* sql<{ id: string; title: string; renames: number }>`
      select id, title, renames from ${sql(table)} order by id`
  })
