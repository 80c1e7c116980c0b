/**
 * The read-only queries behind the explorer's pages, on evently's Postgres tables: the categories with their stream
 * and event counts, a category's streams and a stream's events page by page (keyset paging on indexed columns, so a
 * page of a stream of 100,000 events costs what a page of ten does), the lookup of a stream, an event id or a
 * correlation id, and a stream's event types in order (for its path through a machine). Subscription status and
 * parked events come from `@evently/postgres/PgOperations`, shared with the `evently` command line.
 *
 * Event data is returned as stored: it is user input, and the page renders it as text only.
 *
 * @since 0.1.0
 */
import * as PgSchema from "@evently/postgres/PgSchema"
import * as Effect from "effect/Effect"
import * as SqlClient from "effect/sql/SqlClient"

/**
 * A category: its number of streams and of events (the sum of its streams' versions).
 *
 * @since 0.1.0
 * @category models
 */
export interface CategoryView {
  readonly category: string
  readonly streams: number
  readonly events: number
}

/**
 * A stream as the streams table keeps it.
 *
 * @since 0.1.0
 * @category models
 */
export interface StreamView {
  readonly stream: string
  readonly category: string
  readonly version: number
}

/**
 * A stored event as the pages show it. Positions and transaction ids are decimal strings (64-bit integers do not
 * fit a JSON number); `data` and `metadata` are the stored JSON.
 *
 * @since 0.1.0
 * @category models
 */
export interface EventView {
  readonly position: string
  readonly transactionId: string
  readonly stream: string
  readonly category: string
  readonly version: number
  readonly eventId: string
  readonly type: string
  readonly schemaVersion: number
  readonly data: unknown
  readonly metadata: unknown
  readonly recordedAt: string
}

/**
 * The order of a page: `asc` (oldest first) or `desc` (newest first).
 *
 * @since 0.1.0
 * @category models
 */
export type Order = "asc" | "desc"

interface Row {
  readonly position: string
  readonly txid: string
  readonly stream: string
  readonly category: string
  readonly version: string
  readonly eventid: string
  readonly type: string
  readonly schemaversion: number
  readonly data: string
  readonly metadata: string
  readonly recordedat: string
}

const columns = (sql: SqlClient.SqlClient) =>
  sql.literal(`e.position::text as position, e.transaction_id::text as txid, e.stream, e.category,
    e.stream_version::text as version, e.event_id::text as eventid, e.event_type as type,
    e.schema_version as schemaversion, e.data::text as data, e.metadata::text as metadata,
    to_json(e.recorded_at)#>>'{}' as recordedat`)

const parse = (text: string): unknown => {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return text
  }
}

const toView = (row: Row): EventView => ({
  position: row.position,
  transactionId: row.txid,
  stream: row.stream,
  category: row.category,
  version: Number(row.version),
  eventId: row.eventid,
  type: row.type,
  schemaVersion: row.schemaversion,
  data: parse(row.data),
  metadata: parse(row.metadata),
  recordedAt: row.recordedat
})

/**
 * Every category with its number of streams and events, in name order (one pass over the streams table).
 *
 * @since 0.1.0
 * @category queries
 */
export const categories = Effect.fn("ExplorerQueries.categories")(function* () {
  const sql = yield* SqlClient.SqlClient
  const t = yield* PgSchema.Tables
  const rows = yield* sql<{ category: string; streams: string; events: string }>`
    select category, count(*)::text as streams, sum(version)::text as events
    from ${sql(t.streams)} group by category order by category`
  return rows.map((r): CategoryView => ({ category: r.category, streams: Number(r.streams), events: Number(r.events) }))
})

/**
 * Up to `limit` streams of `category` whose names sort after `after` (the last name of the previous page), in name
 * order: the streams table's primary key serves the page.
 *
 * @since 0.1.0
 * @category queries
 */
export const streamsPage = Effect.fn("ExplorerQueries.streamsPage")(function* (options: {
  readonly category: string
  readonly after?: string | undefined
  readonly limit: number
}) {
  const sql = yield* SqlClient.SqlClient
  const t = yield* PgSchema.Tables
  const rows = yield* sql<{ stream: string; category: string; version: string }>`
    select stream, category, version::text as version from ${sql(t.streams)}
    where category = ${options.category} ${options.after === undefined ? sql`` : sql`and stream > ${options.after}`}
    order by stream limit ${options.limit}`
  return rows.map((r): StreamView => ({ stream: r.stream, category: r.category, version: Number(r.version) }))
})

/**
 * The stream `stream` as the streams table keeps it, or `undefined` when it has no events.
 *
 * @since 0.1.0
 * @category queries
 */
export const stream = Effect.fn("ExplorerQueries.stream")(function* (name: string) {
  const sql = yield* SqlClient.SqlClient
  const t = yield* PgSchema.Tables
  const [row] = yield* sql<{ stream: string; category: string; version: string }>`
    select stream, category, version::text as version from ${sql(t.streams)} where stream = ${name}`
  return row === undefined ? undefined : ({ ...row, version: Number(row.version) } satisfies StreamView)
})

/**
 * Up to `limit` events of `stream` after version `from` (exclusive) in `asc` order, or before it in `desc` order
 * (no `from`: from the first, or the last, event). The unique (stream, version) index serves the page.
 *
 * @since 0.1.0
 * @category queries
 */
export const eventsPage = Effect.fn("ExplorerQueries.eventsPage")(function* (options: {
  readonly stream: string
  readonly order: Order
  readonly from?: number | undefined
  readonly limit: number
}) {
  const sql = yield* SqlClient.SqlClient
  const t = yield* PgSchema.Tables
  const bound =
    options.from === undefined
      ? sql``
      : options.order === "asc"
        ? sql`and e.stream_version > ${options.from}`
        : sql`and e.stream_version < ${options.from}`
  const rows = yield* sql<Row>`select ${columns(sql)} from ${sql(t.events)} e
    where e.stream = ${options.stream} ${bound}
    order by e.stream_version ${options.order === "asc" ? sql`asc` : sql`desc`} limit ${options.limit}`
  return rows.map(toView)
})

/**
 * Up to `limit` events of `category`, newest first, before position `before` (none: from the newest): the
 * (category, position) index serves the page, so a category of a million events pages as fast as a small one.
 *
 * @since 0.1.0
 * @category queries
 */
export const categoryEventsPage = Effect.fn("ExplorerQueries.categoryEventsPage")(function* (options: {
  readonly category: string
  readonly before?: bigint | undefined
  readonly limit: number
}) {
  const sql = yield* SqlClient.SqlClient
  const t = yield* PgSchema.Tables
  const rows = yield* sql<Row>`select ${columns(sql)} from ${sql(t.events)} e
    where e.category = ${options.category} ${options.before === undefined ? sql`` : sql`and e.position < ${options.before}`}
    order by e.position desc limit ${options.limit}`
  return rows.map(toView)
})

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * What a search found: the stream of that name, streams whose names start with the text, the event of that id, and
 * the correlation chain of that id.
 *
 * @since 0.1.0
 * @category models
 */
export interface SearchResult {
  readonly query: string
  readonly streams: ReadonlyArray<StreamView>
  readonly event: EventView | undefined
  readonly chain: ReadonlyArray<EventView>
}

/**
 * Looks `text` up as a stream name (exact, then up to 20 names it starts), an event id and a correlation id. The
 * chain of a correlation id is every event whose metadata carries it, and the event whose id it is, across streams,
 * in log order (transaction, then position). The correlation lookup reads the metadata of every event (there is no
 * index on it): it is a scan, fine for an operator's search, not for a hot path.
 *
 * @since 0.1.0
 * @category queries
 */
export const search = Effect.fn("ExplorerQueries.search")(function* (text: string, limit = 500) {
  const sql = yield* SqlClient.SqlClient
  const t = yield* PgSchema.Tables
  const streams = yield* sql<{ stream: string; category: string; version: string }>`
    select stream, category, version::text as version from ${sql(t.streams)}
    where starts_with(stream, ${text}) order by stream <> ${text}, stream limit 20`
  const isUuid = uuid.test(text)
  const [event] = isUuid
    ? yield* sql<Row>`select ${columns(sql)} from ${sql(t.events)} e where e.event_id = ${text}::uuid`
    : []
  const chain = yield* sql<Row>`select ${columns(sql)} from ${sql(t.events)} e
    where e.metadata->>'correlationId' = ${text}
      ${isUuid ? sql`or e.event_id = ${text}::uuid` : sql``}
    order by e.transaction_id, e.position limit ${limit}`
  return {
    query: text,
    streams: streams.map((r): StreamView => ({ ...r, version: Number(r.version) })),
    event: event === undefined ? undefined : toView(event),
    chain: chain.map(toView)
  } satisfies SearchResult
})

/**
 * The event types of `stream`, in version order: what its path through a machine is made of.
 *
 * @since 0.1.0
 * @category queries
 */
export const eventTypes = Effect.fn("ExplorerQueries.eventTypes")(function* (name: string) {
  const sql = yield* SqlClient.SqlClient
  const t = yield* PgSchema.Tables
  const rows = yield* sql<{ type: string }>`
    select event_type as type from ${sql(t.events)} where stream = ${name} order by stream_version`
  return rows.map((r) => r.type)
})

/**
 * The newest `limit` events of the log, oldest first: where the live tail starts (it follows with
 * `PgOperations.readPage`).
 *
 * @since 0.1.0
 * @category queries
 */
export const latest = Effect.fn("ExplorerQueries.latest")(function* (limit: number) {
  const sql = yield* SqlClient.SqlClient
  const t = yield* PgSchema.Tables
  const rows = yield* sql<Row>`select ${columns(sql)} from ${sql(t.events)} e order by e.position desc limit ${limit}`
  return rows.map(toView).toReversed()
})
