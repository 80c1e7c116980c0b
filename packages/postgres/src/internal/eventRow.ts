/**
 * How the adapters select stored events and turn a row into a `RecordedEvent`: one column list and one decoding for
 * the store's reads and the subscriptions' reads. A row that cannot become a `RecordedEvent` (written outside
 * evently: a restore, a manual fix, another tool) decodes to an `EventStore.UnreadableEvent` naming its position,
 * never to a defect.
 */
import { EventStore, StreamName } from "@evently/store"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type * as SqlClient from "effect/sql/SqlClient"
import type * as Statement from "effect/sql/Statement"

const columnList = (binary: boolean) => `e.position, e.transaction_id::text as txid, e.stream, e.category,
  e.stream_version as version, ${binary ? "e.event_id" : "e.event_id::text"} as eventid, e.event_type as type,
  e.schema_version as schemaversion, ${binary ? "e.data" : "e.data::text"} as data, e.metadata::text as metadata,
  e.recorded_at as recordedat`
const binaryList = columnList(true)
const textList = columnList(false)

/**
 * The column list of every read of the events table, aliased `e`, and how its `data` comes back. The aliases have
 * no underscores, so a client's result-name transform cannot rename them, and none is the name of a table column: an
 * `order by transaction_id` beside it always sorts by the xid8 column, never by the text alias (`'10' < '9'` would
 * skip events). The stream version is selected as it is stored (`bigint`), so a version out of range is the row's
 * problem, named by its position, not a failed query. Reads take the rows as `values` and {@link fromValues} names
 * them: the order here is the order there.
 *
 * `binary`: `data` and `event_id` come in their binary forms, parsed by the driver (a `jsonb` is always JSON), which
 * made a subscription's catch-up about a quarter faster than casting both to `text` and parsing `data` here: the
 * casts cost the server more than the parse they replaced, and the parse then ran after the page instead of while
 * it arrived. That is only right when the client's codecs for `jsonb` and `uuid` are the driver's own: an app may
 * register others (`PgTypes.register`, or a client's `types`), say a reviver that makes dates of ISO strings, and an
 * event's data must come back as it was written. So a client reads binary only once {@link probe} has found its
 * codecs returning what `JSON.parse` and `uuid::text` return; until then, and for good when they differ, as text.
 * `values` applies no result transform, so `transformJson` never renames the keys of an event's data either way.
 * `metadata` always comes as text: it is `{}` for most events, which {@link decode} recognizes without parsing.
 */
export interface Columns {
  readonly fragment: Statement.Fragment
  readonly binary: boolean
}

// Per client: whether its codecs passed the probe (absent: not probed yet, read as text).
const binaryClients = new WeakMap<SqlClient.SqlClient, boolean>()

/** The columns to select through `sql`, as its probe decided (text until it has run). */
export const columnsOf = (sql: SqlClient.SqlClient): Columns => {
  const binary = binaryClients.get(sql) === true
  return { binary, fragment: sql.literal(binary ? binaryList : textList) }
}

// What an app's reviver or number codec would change: ISO dates, numeric strings, a number beyond 2^53, keys in
// snake case, nesting, non-ASCII text; and a uuid given in upper case.
const probeDocument =
  '{"at": "2024-01-02T03:04:05.678Z", "day": "2024-01-02", "amount": "12.50", "id": "12345", ' +
  '"big": 12345678901234567890, "created_at": {"nested_key": [1, 2.5, -0.5, null, true, false, "x", {"deep": []}]}, ' +
  '"text": "\u00e9\ud83d\ude00", "empty": {}}'
const probeUuid = "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"

/** Whether two values are the same JSON: plain objects and arrays only, equal leaves. */
const sameJson = (a: unknown, b: unknown): boolean => {
  if (typeof a !== "object" || a === null || typeof b !== "object" || b === null) return Object.is(a, b)
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => sameJson(x, b[i]))
  if (Object.getPrototypeOf(a) !== Object.prototype || Object.getPrototypeOf(b) !== Object.prototype) return false
  const keys = Object.keys(a)
  const record = b as Record<string, unknown>
  return (
    keys.length === Object.keys(b).length &&
    keys.every((key) => Object.hasOwn(b, key) && sameJson((a as Record<string, unknown>)[key], record[key]))
  )
}

/**
 * Decides, once per client, whether its reads take `data` and `event_id` binary (see {@link Columns}): one statement
 * that selects a probe document as `jsonb` and as its text, and a uuid both ways. A failed probe (no connection) is
 * tried again by the next read; until one succeeds, reads are as text.
 */
export const probe = (sql: SqlClient.SqlClient): Effect.Effect<void> =>
  Effect.suspend(() =>
    binaryClients.has(sql)
      ? Effect.void
      : sql`select p.j, p.j::text, p.u, p.u::text
          from (select ${probeDocument}::text::jsonb as j, ${probeUuid}::text::uuid as u) p`.values.pipe(
          Effect.map(([row]) => {
            const [json, jsonText, uuid, uuidText] = row ?? []
            binaryClients.set(
              sql,
              typeof jsonText === "string" && sameJson(json, parseJson(jsonText)) && uuid === uuidText
            )
          }),
          Effect.ignore
        )
  )

/**
 * What the driver returns for a row selected with {@link columnsOf} and read with a statement's `values`: the columns'
 * values in order, with no object built per row. (An object row costs the driver about 150 ns: it assigns each column
 * by its name in a loop. {@link fromValues} builds the same record as a literal, in about 20.)
 */
export type Values = ReadonlyArray<unknown>

/** A row selected with {@link columnsOf}. */
export interface EventRow {
  readonly position: bigint
  readonly txid: string
  readonly stream: string
  readonly category: string
  readonly version: bigint
  readonly eventid: string
  readonly type: string
  readonly schemaversion: number
  readonly data: unknown
  readonly metadata: string
  readonly recordedat: Date
}

/** The row of a {@link Values} selected with {@link columnsOf}. */
export const fromValues = (v: Values): EventRow => ({
  position: v[0] as bigint,
  txid: v[1] as string,
  stream: v[2] as string,
  category: v[3] as string,
  version: v[4] as bigint,
  eventid: v[5] as string,
  type: v[6] as string,
  schemaversion: v[7] as number,
  data: v[8],
  metadata: v[9] as string,
  recordedat: v[10] as Date
})

/** How many values {@link columnsOf} selects: a statement may add its own after them. */
export const columnCount = 11

const isMetadata = Schema.is(EventStore.Metadata)

/** The largest stream version a read works with (the stores' versions are 32-bit). */
const maxVersion = 2_147_483_647

const excerpt = (text: string): string => (text.length > 80 ? `${text.slice(0, 80)}…` : text)

/** Why a text is not JSON, from `JSON.parse`'s error. */
class NotJson {
  readonly reason: string
  constructor(reason: string) {
    this.reason = reason
  }
}

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text) as unknown
  } catch (error) {
    return new NotJson(String(error))
  }
}

/** The stored text of empty metadata (`'{}'::jsonb::text`): nothing to parse or check. */
const emptyMetadata = "{}"

/** The row's metadata parsed and checked, or what is wrong with it (a string). */
const metadataOf = (text: string): EventStore.Metadata | string => {
  if (text === emptyMetadata) return {}
  const metadata = parseJson(text)
  if (metadata instanceof NotJson) return `its metadata is not JSON: ${metadata.reason}`
  return isMetadata(metadata)
    ? metadata
    : `its metadata ${excerpt(text)} is not { correlationId?, causationId?, headers? } with string values`
}

/**
 * What the previous rows of a page have established: a stream name already checked (a page of a stream read has one)
 * and its category, a transaction id already converted (the rows of one transaction are adjacent in a log read), a
 * `recorded_at` already made a `DateTime` (the events of one append share it; a `DateTime` is an immutable value).
 */
interface PageMemo {
  stream: string | undefined
  category: string
  txid: string | undefined
  transactionId: bigint
  recordedAtMillis: number
  recordedAt: DateTime.Utc | undefined
}

const newMemo = (): PageMemo => ({
  stream: undefined,
  category: "",
  txid: undefined,
  transactionId: 0n,
  recordedAtMillis: Number.NaN,
  recordedAt: undefined
})

/** `recorded_at` as a UTC `DateTime`, or `undefined` when no `DateTime` can hold it. */
const recordedAtOf = (value: Date, memo: PageMemo): DateTime.Utc | undefined => {
  // A valid `Date` (the driver's value of every finite timestamp a `DateTime` can hold) without the generic path.
  if (value instanceof Date) {
    const millis = value.getTime()
    if (millis === memo.recordedAtMillis) return memo.recordedAt
    if (!Number.isNaN(millis)) {
      memo.recordedAtMillis = millis
      return (memo.recordedAt = DateTime.fromDateUnsafe(value))
    }
  }
  const made = DateTime.make(value)
  return made._tag === "None" ? undefined : DateTime.toUtc(made.value)
}

/** The recorded event a row holds, or why it cannot be one. */
const decodeOne = (row: EventRow, memo: PageMemo, binary: boolean): EventStore.RecordedEvent | string => {
  if (row.stream !== memo.stream || memo.stream === undefined) {
    const streamProblem = StreamName.problem(row.stream)
    if (streamProblem !== undefined) return `its stream name is invalid: ${streamProblem}`
    memo.category = StreamName.category(row.stream as StreamName.StreamName)
    memo.stream = row.stream
  }
  if (row.category !== memo.category) {
    return `its category '${row.category}' is not its stream's category '${memo.category}'`
  }
  const version = Number(row.version)
  if (!(version >= 1 && version <= maxVersion)) return `its stream version ${row.version} is outside 1 to ${maxVersion}`
  const data = binary ? row.data : parseJson(row.data as string)
  if (data instanceof NotJson) return `its data is not JSON: ${data.reason}`
  const metadata = metadataOf(row.metadata)
  if (typeof metadata === "string") return metadata
  const recordedAt = recordedAtOf(row.recordedat, memo)
  if (recordedAt === undefined) {
    return "its recorded_at is not a date a DateTime can hold (infinity, -infinity, or beyond the year 275760)"
  }
  if (row.txid !== memo.txid) {
    memo.transactionId = BigInt(row.txid)
    memo.txid = row.txid
  }
  return {
    position: BigInt(row.position),
    transactionId: memo.transactionId,
    stream: row.stream as StreamName.StreamName,
    category: memo.category,
    streamVersion: version,
    eventId: row.eventid,
    type: row.type,
    schemaVersion: row.schemaversion,
    data,
    metadata,
    recordedAt
  }
}

const unreadable = (row: EventRow, reason: string) =>
  new EventStore.UnreadableEvent({ position: BigInt(row.position), stream: String(row.stream), reason })

/**
 * The recorded event a row holds, or an `UnreadableEvent` naming its position and what is wrong: a stream name that
 * is not one (or a category that is not its stream's), a stream version outside 1 to 2^31 - 1, `data` or `metadata`
 * that is not JSON, metadata that is not `{ correlationId?, causationId?, headers? }` of strings, a `recorded_at` no
 * `DateTime` can hold (`infinity`, `-infinity`, beyond the year 275760).
 */
export const decode = (
  row: EventRow,
  binary: boolean
): Result.Result<EventStore.RecordedEvent, EventStore.UnreadableEvent> => {
  const decoded = decodeOne(row, newMemo(), binary)
  return typeof decoded === "string" ? Result.fail(unreadable(row, decoded)) : Result.succeed(decoded)
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
 * Decodes rows (read as {@link Values}) in order up to the first that does not decode (see {@link decode}). A reader
 * delivers `events` and then fails with `unreadable`: every event before the damaged row is delivered, none after it.
 */
export const decodeRows = (rows: ReadonlyArray<Values>, binary: boolean): Decoded => {
  const events: Array<EventStore.RecordedEvent> = []
  const memo = newMemo()
  for (const values of rows) {
    const row = fromValues(values)
    const decoded = decodeOne(row, memo, binary)
    if (typeof decoded === "string") return { events, unreadable: unreadable(row, decoded) }
    events.push(decoded)
  }
  return { events, unreadable: undefined }
}
