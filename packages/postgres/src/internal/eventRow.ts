/**
 * How the adapters select stored events and turn a row into a `RecordedEvent`: one column list and one decoding for
 * the store's reads and the subscriptions' reads. A row that cannot become a `RecordedEvent` (written outside
 * evently: a restore, a manual fix, another tool) decodes to an `EventStore.UnreadableEvent` naming its position,
 * never to a defect.
 */
import { EventStore, StreamName } from "@evently/store"
import * as DateTime from "effect/DateTime"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type * as SqlClient from "effect/sql/SqlClient"
import type * as Statement from "effect/sql/Statement"

/**
 * The column list of every read of the events table, aliased `e`. The aliases have no underscores, so a client's
 * result-name transform cannot rename them, and none is the name of a table column: an `order by transaction_id`
 * beside it always sorts by the xid8 column, never by the text alias (`'10' < '9'` would skip events). The stream
 * version is selected as it is stored (`bigint`), so a version out of range is the row's problem, named by its
 * position, not a failed query.
 */
export const columns = (sql: SqlClient.SqlClient): Statement.Fragment =>
  sql.literal(`e.position, e.transaction_id::text as txid, e.stream, e.category,
  e.stream_version as version, e.event_id::text as eventid, e.event_type as type,
  e.schema_version as schemaversion, e.data::text as data, e.metadata::text as metadata, e.recorded_at as recordedat`)

/** A row selected with {@link columns}. */
export interface EventRow {
  readonly position: bigint
  readonly txid: string
  readonly stream: string
  readonly category: string
  readonly version: bigint
  readonly eventid: string
  readonly type: string
  readonly schemaversion: number
  readonly data: string
  readonly metadata: string
  readonly recordedat: Date
}

const isMetadata = Schema.is(EventStore.Metadata)

/** The largest stream version a read works with (the stores' versions are 32-bit). */
const maxVersion = 2_147_483_647

const excerpt = (text: string): string => (text.length > 80 ? `${text.slice(0, 80)}…` : text)

const parseJson = (text: string): Result.Result<unknown, string> =>
  Result.try({ try: () => JSON.parse(text) as unknown, catch: (error) => String(error) })

/**
 * The recorded event a row holds, or an `UnreadableEvent` naming its position and what is wrong: a stream name that
 * is not one (or a category that is not its stream's), a stream version outside 1 to 2^31 - 1, `data` or `metadata`
 * that is not JSON, metadata that is not `{ correlationId?, causationId?, headers? }` of strings, a `recorded_at` no
 * `DateTime` can hold (`infinity`, `-infinity`, beyond the year 275760).
 */
export const decode = (row: EventRow): Result.Result<EventStore.RecordedEvent, EventStore.UnreadableEvent> => {
  const position = BigInt(row.position)
  const fail = (reason: string) =>
    Result.fail(new EventStore.UnreadableEvent({ position, stream: String(row.stream), reason }))
  const streamProblem = StreamName.problem(row.stream)
  if (streamProblem !== undefined) return fail(`its stream name is invalid: ${streamProblem}`)
  const stream = row.stream as StreamName.StreamName
  const category = StreamName.category(stream)
  if (row.category !== category) {
    return fail(`its category '${row.category}' is not its stream's category '${category}'`)
  }
  const version = BigInt(row.version)
  if (version < 1n || version > BigInt(maxVersion)) {
    return fail(`its stream version ${version} is outside 1 to ${maxVersion}`)
  }
  const data = parseJson(row.data)
  if (Result.isFailure(data)) return fail(`its data is not JSON: ${data.failure}`)
  const metadata = parseJson(row.metadata)
  if (Result.isFailure(metadata)) return fail(`its metadata is not JSON: ${metadata.failure}`)
  if (!isMetadata(metadata.success)) {
    return fail(
      `its metadata ${excerpt(row.metadata)} is not { correlationId?, causationId?, headers? } with string values`
    )
  }
  const recordedAt = DateTime.make(row.recordedat)
  if (recordedAt._tag === "None") {
    return fail("its recorded_at is not a date a DateTime can hold (infinity, -infinity, or beyond the year 275760)")
  }
  return Result.succeed({
    position,
    transactionId: BigInt(row.txid),
    stream,
    category,
    streamVersion: Number(version),
    eventId: row.eventid,
    type: row.type,
    schemaVersion: row.schemaversion,
    data: data.success,
    metadata: metadata.success,
    recordedAt: DateTime.toUtc(recordedAt.value)
  })
}

/**
 * A page of rows decoded in order: the recorded events of the rows before the first unreadable one, and that row's
 * error (`undefined` when every row decoded).
 */
export interface Decoded {
  readonly events: Array<EventStore.RecordedEvent>
  readonly unreadable: EventStore.UnreadableEvent | undefined
}

/**
 * Decodes rows in order up to the first that does not decode (see {@link decode}). A reader delivers `events` and
 * then fails with `unreadable`: every event before the damaged row is delivered, none after it.
 */
export const decodeRows = (rows: ReadonlyArray<EventRow>): Decoded => {
  const events: Array<EventStore.RecordedEvent> = []
  for (const row of rows) {
    const decoded = decode(row)
    if (Result.isFailure(decoded)) return { events, unreadable: decoded.failure }
    events.push(decoded.success)
  }
  return { events, unreadable: undefined }
}
