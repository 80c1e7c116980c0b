/**
 * How the adapters select stored events and turn a row into a `RecordedEvent`: one column list and one mapping for
 * the store's reads and the subscriptions' reads.
 */
import type { EventStore, StreamName } from "@evently/store"
import * as DateTime from "effect/DateTime"
import type * as SqlClient from "effect/sql/SqlClient"
import type * as Statement from "effect/sql/Statement"

/**
 * The column list of every read of the events table, aliased `e`. The aliases have no underscores, so a client's
 * result-name transform cannot rename them, and none is the name of a table column: an `order by transaction_id`
 * beside it always sorts by the xid8 column, never by the text alias (`'10' < '9'` would skip events).
 */
export const columns = (sql: SqlClient.SqlClient): Statement.Fragment =>
  sql.literal(`e.position, e.transaction_id::text as txid, e.stream, e.category,
  e.stream_version::int4 as version, e.event_id::text as eventid, e.event_type as type,
  e.schema_version as schemaversion, e.data::text as data, e.metadata::text as metadata, e.recorded_at as recordedat`)

/** A row selected with {@link columns}. */
export interface EventRow {
  readonly position: bigint
  readonly txid: string
  readonly stream: string
  readonly category: string
  readonly version: number
  readonly eventid: string
  readonly type: string
  readonly schemaversion: number
  readonly data: string
  readonly metadata: string
  readonly recordedat: Date
}

/** The recorded event a row holds. */
export const toRecorded = (row: EventRow): EventStore.RecordedEvent => ({
  position: BigInt(row.position),
  transactionId: BigInt(row.txid),
  stream: row.stream as StreamName.StreamName,
  category: row.category,
  streamVersion: row.version,
  eventId: row.eventid,
  type: row.type,
  schemaVersion: row.schemaversion,
  data: JSON.parse(row.data),
  metadata: JSON.parse(row.metadata),
  recordedAt: DateTime.fromDateUnsafe(row.recordedat)
})
