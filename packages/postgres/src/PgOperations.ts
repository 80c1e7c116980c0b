/**
 * The queries an operator runs against a live evently database, shared by the `evently` command line and the
 * explorer: every subscription partition's checkpoint, lag and active worker, the transaction that holds the log
 * back, the migrations still to run and their SQL, the streams, the parked events (list, retry, drop), and the raw
 * log page by page for `verify`. Nothing here needs a running worker or the application's handlers.
 *
 * @since 0.1.0
 */
import type * as EventStore from "@evently/store/EventStore"
import * as Effect from "effect/Effect"
import type * as Result from "effect/Result"
import * as Reactivity from "effect/reactivity/Reactivity"
import * as SqlClient from "effect/sql/SqlClient"
import type * as SqlConnection from "effect/sql/SqlConnection"
import type * as SqlError from "effect/sql/SqlError"
import type * as Statement from "effect/sql/Statement"
import { PgClient } from "@effect/sql-pg"
import * as EventRow from "./internal/eventRow.ts"
import * as PgSchema from "./PgSchema.ts"

/**
 * The database session that holds a partition's advisory lock: the active worker. Postgres does not record when a
 * session took a lock, so `backendStart` is when the worker's connection was opened (a lower bound).
 *
 * @since 0.1.0
 * @category models
 */
export interface Worker {
  readonly pid: number
  readonly clientAddress: string | null
  readonly clientHostname: string | null
  readonly applicationName: string
  readonly backendStart: Date | null
}

/**
 * The projection build a subscription writes (from the projections registry of `PgProjections`).
 *
 * @since 0.1.0
 * @category models
 */
export interface ProjectionBuild {
  readonly name: string
  readonly version: number
  readonly build: number
  readonly state: string
}

/**
 * One partition of one durable subscription: its checkpoint, the matching events it has not handled (how many, and
 * the age in seconds of the oldest), its parked events, the worker holding it, if any, and the projection build it
 * writes when it is one.
 *
 * @since 0.1.0
 * @category models
 */
export interface PartitionReport {
  readonly subscription: string
  readonly partition: number
  readonly partitions: number
  readonly checkpoint: { readonly transactionId: bigint; readonly position: bigint }
  readonly updatedAt: Date
  readonly categories: ReadonlyArray<string> | undefined
  readonly eventTypes: ReadonlyArray<string> | undefined
  readonly lagEvents: number
  readonly lagSeconds: number
  readonly parked: number
  readonly worker: Worker | undefined
  readonly projection: ProjectionBuild | undefined
}

/**
 * An open transaction older than committed events: subscriptions cannot read past it (their gap-free cursor waits
 * for it), so `heldEvents` committed events stay undelivered until it ends. It is the oldest running transaction of
 * the whole cluster, so it may be in another database.
 *
 * @since 0.1.0
 * @category models
 */
export interface XminHolder {
  readonly pid: number
  /** The transaction's 32-bit id, as `pg_stat_activity.backend_xid` shows it. */
  readonly transactionId: number
  readonly transactionStart: Date | null
  readonly state: string | null
  readonly applicationName: string
  readonly clientAddress: string | null
  readonly query: string
  readonly heldEvents: number
}

/**
 * What `status` reports: every partition of every durable subscription, and the transaction holding the log back.
 *
 * @since 0.1.0
 * @category models
 */
export interface StatusReport {
  readonly partitions: ReadonlyArray<PartitionReport>
  readonly xminHolder: XminHolder | undefined
}

interface CheckpointRow {
  readonly subscription: string
  readonly partition: number
  readonly partitions: number
  readonly tx: string
  readonly pos: bigint
  readonly filter: string
  readonly updatedat: Date
  readonly parked: number
  readonly pid: number | null
  readonly addr: string | null
  readonly host: string | null
  readonly app: string | null
  readonly since: Date | null
  readonly projection: string | null
}

interface StoredFilter {
  readonly categories?: ReadonlyArray<string> | undefined
  readonly eventTypes?: ReadonlyArray<string> | undefined
}

// The same selection as PgSubscriptions' reader: categories, event types, and the partition's share of the streams.
const filterFragment = (
  sql: SqlClient.SqlClient,
  filter: StoredFilter,
  partitions: number,
  partition: number
): Statement.Fragment =>
  sql`${filter.categories === undefined ? sql`` : sql`and category = any(${filter.categories}::text[])`} ${
    filter.eventTypes === undefined ? sql`` : sql`and event_type = any(${filter.eventTypes}::text[])`
  } ${
    partitions <= 1 ? sql`` : sql`and mod(abs(hashtext(stream)::bigint), ${partitions}::bigint) = ${partition}::bigint`
  }`

const strings = (v: unknown): ReadonlyArray<string> | undefined =>
  Array.isArray(v) && v.every((s) => typeof s === "string") ? v : undefined

const parseFilter = (text: string): StoredFilter => {
  const value = JSON.parse(text) as unknown
  if (typeof value !== "object" || value === null) return {}
  const record = value as Record<string, unknown>
  return { categories: strings(record.categories), eventTypes: strings(record.eventTypes) }
}

/**
 * Every checkpoint row with its lag, parked count and worker, in subscription and partition order, and the backend
 * whose open transaction holds the log back (when committed events wait behind it). The worker is the session
 * holding the partition's advisory lock `(hashtext('evently:' || name), partition)` in this database; standbys poll
 * with `pg_try_advisory_lock` and are invisible to Postgres. Ephemeral subscriptions have no row and are not listed.
 * A projection build's subscription carries its projection, version, build and state.
 *
 * @since 0.1.0
 * @category status
 */
export const status: Effect.Effect<StatusReport, SqlError.SqlError, SqlClient.SqlClient> = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const t = yield* PgSchema.Tables
  const [registry] = yield* sql<{ exists: boolean }>`select to_regclass(${t.projections}) is not null as exists`
  const projection = registry!.exists
    ? sql`(select json_build_object('name', r.name, 'version', r.version, 'build', r.build, 'state', r.state)::text
        from ${sql(t.projections)} r where r.subscription = c.subscription)`
    : sql`null::text`
  const rows = yield* sql<CheckpointRow>`
    select c.subscription, c.partition, c.partitions, c.transaction_id::text as tx, c.position as pos,
      c.filter::text as filter, c.updated_at as updatedat, ${projection} as projection,
      (select count(*)::int from ${sql(t.parked)} p
        where p.subscription = c.subscription and p.partition = c.partition) as parked,
      w.pid, w.addr, w.host, w.app, w.since
    from ${sql(t.checkpoints)} c
    left join lateral (
      select a.pid, host(a.client_addr) as addr, a.client_hostname as host, a.application_name as app,
        a.backend_start as since
      from pg_locks l join pg_stat_activity a on a.pid = l.pid
      where l.locktype = 'advisory' and l.granted and l.objsubid = 2
        and l.database = (select oid from pg_database where datname = current_database())
        and l.classid::bigint = (hashtext('evently:' || c.subscription)::bigint & 4294967295)
        and l.objid::bigint = c.partition
      limit 1
    ) w on true
    order by c.subscription, c.partition`
  const partitions: Array<PartitionReport> = []
  for (const row of rows) partitions.push(yield* partitionReport(sql, t, row))
  return { partitions, xminHolder: yield* xminHolder(sql, t) }
})

const partitionReport = Effect.fnUntraced(function* (
  sql: SqlClient.SqlClient,
  t: PgSchema.TableNames,
  row: CheckpointRow
) {
  const filter = parseFilter(row.filter)
  const [lag] = yield* sql<{ lag: number; seconds: number | null }>`
    select count(*)::int as lag,
      extract(epoch from now() - min(recorded_at) filter (where isfinite(recorded_at)))::float8 as seconds
    from ${sql(t.events)}
    where (transaction_id, position) > (${row.tx}::xid8, ${row.pos})
      ${filterFragment(sql, filter, row.partitions, row.partition)}`
  return {
    subscription: row.subscription,
    partition: row.partition,
    partitions: row.partitions,
    checkpoint: { transactionId: BigInt(row.tx), position: BigInt(row.pos) },
    updatedAt: row.updatedat,
    categories: filter.categories,
    eventTypes: filter.eventTypes,
    lagEvents: lag!.lag,
    lagSeconds: Math.max(0, lag!.seconds ?? 0),
    parked: row.parked,
    worker:
      row.pid === null
        ? undefined
        : {
            pid: row.pid,
            clientAddress: row.addr,
            clientHostname: row.host,
            applicationName: row.app ?? "",
            backendStart: row.since
          },
    projection: row.projection === null ? undefined : (JSON.parse(row.projection) as ProjectionBuild)
  } satisfies PartitionReport
})

const xminHolder = Effect.fnUntraced(function* (sql: SqlClient.SqlClient, t: PgSchema.TableNames) {
  const [held] = yield* sql<{ held: number }>`
    select count(*)::int as held from ${sql(t.events)}
    where transaction_id >= pg_snapshot_xmin(pg_current_snapshot())`
  if (held!.held === 0) return undefined
  const [row] = yield* sql<{
    pid: number
    xid: string
    xactstart: Date | null
    state: string | null
    app: string | null
    addr: string | null
    query: string | null
  }>`
    select pid, backend_xid::text as xid, xact_start as xactstart, state, application_name as app, host(client_addr) as addr,
      left(query, 200) as query
    from pg_stat_activity
    where backend_xid is not null
      and backend_xid::text::bigint = pg_snapshot_xmin(pg_current_snapshot())::text::bigint % 4294967296
    limit 1`
  if (row === undefined) return undefined
  return {
    pid: row.pid,
    transactionId: Number(row.xid),
    transactionStart: row.xactstart,
    state: row.state,
    applicationName: row.app ?? "",
    clientAddress: row.addr,
    query: row.query ?? "",
    heldEvents: held!.held
  } satisfies XminHolder
})

/**
 * A migration of `PgSchema.migrations` that this database has not run, with the statements it would run.
 *
 * @since 0.1.0
 * @category migrations
 */
export interface PendingMigration {
  readonly id: number
  readonly name: string
  readonly statements: ReadonlyArray<string>
}

/**
 * The migrations `PgSchema.migrate` would run on this database now (those numbered after the last one it ran, as
 * `Migrator` decides), each with its SQL. The SQL is captured by running the migration against a client that
 * compiles its statements and executes none: the database is only read (the migrations table, when it exists).
 *
 * @since 0.1.0
 * @category migrations
 */
export const pendingMigrations: Effect.Effect<
  ReadonlyArray<PendingMigration>,
  SqlError.SqlError,
  SqlClient.SqlClient
> = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const t = yield* PgSchema.Tables
  const [exists] = yield* sql<{ exists: boolean }>`select to_regclass(${t.migrations}) is not null as exists`
  const latest = exists!.exists
    ? ((yield* sql<{ id: number | null }>`select max(migration_id) as id from ${sql(t.migrations)}`)[0]?.id ?? 0)
    : 0
  const pending: Array<PendingMigration> = []
  for (const [key, migration] of Object.entries(PgSchema.migrations).sort(([a], [b]) => a.localeCompare(b))) {
    const match = /^(\d+)_(.+)$/.exec(key)
    if (match === null || Number(match[1]) <= latest) continue
    pending.push({ id: Number(match[1]), name: match[2]!, statements: yield* statementsOf(migration) })
  }
  return pending
})

// Runs a migration on a client whose connection records each statement's text and returns no rows.
const statementsOf = Effect.fnUntraced(function* (
  migration: Effect.Effect<void, SqlError.SqlError, SqlClient.SqlClient>
) {
  const statements: Array<string> = []
  const record = (text: string) =>
    Effect.sync(() => {
      statements.push(text)
      return [] as ReadonlyArray<never>
    })
  const connection: SqlConnection.Connection = {
    execute: record,
    executeRaw: record,
    executeStream: () => {
      throw new Error("a migration streamed a query")
    },
    executeValues: record,
    executeValuesUnprepared: record,
    executeUnprepared: record
  }
  const recorder = yield* SqlClient.make({
    acquirer: Effect.succeed(connection),
    compiler: PgClient.makeCompiler(),
    driver: "evently-dry-run",
    spanAttributes: []
  }).pipe(Effect.provide(Reactivity.layer))
  yield* Effect.provideService(migration, SqlClient.SqlClient, recorder)
  return statements
})

/**
 * A stream as the streams table keeps it: name, category, version (its number of events).
 *
 * @since 0.1.0
 * @category streams
 */
export interface StreamRow {
  readonly stream: string
  readonly category: string
  readonly version: number
}

/**
 * The streams, in name order, of one category or all, at most `limit` (default 1,000).
 *
 * @since 0.1.0
 * @category streams
 */
export const streams = Effect.fn("PgOperations.streams")(function* (
  options: { readonly category?: string | undefined; readonly limit?: number | undefined } = {}
) {
  const sql = yield* SqlClient.SqlClient
  const t = yield* PgSchema.Tables
  const rows = yield* sql<{ stream: string; category: string; version: bigint }>`
    select stream, category, version from ${sql(t.streams)}
    ${options.category === undefined ? sql`` : sql`where category = ${options.category}`}
    order by stream limit ${options.limit ?? 1000}`
  return rows.map((row): StreamRow => ({ stream: row.stream, category: row.category, version: Number(row.version) }))
})

/**
 * A parked event as its row keeps it, with the row's id (what `retryParked` and `dropParked` take).
 *
 * @since 0.1.0
 * @category parked
 */
export interface ParkedRow {
  readonly id: bigint
  readonly subscription: string
  readonly partition: number
  readonly position: bigint
  readonly transactionId: bigint
  readonly eventId: string
  readonly stream: string
  readonly type: string
  readonly error: string
  readonly parkedAt: Date
}

const parkedRows = (sql: SqlClient.SqlClient, t: PgSchema.TableNames, name: string, ids?: ReadonlyArray<bigint>) =>
  sql<{
    id: bigint
    subscription: string
    partition: number
    position: bigint
    tx: string
    eventid: string
    stream: string
    type: string
    error: string
    parkedat: Date
  }>`select id, subscription, partition, position, transaction_id::text as tx, event_id::text as eventid, stream,
      event_type as type, error, parked_at as parkedat
    from ${sql(t.parked)} where subscription = ${name}
    ${ids === undefined ? sql`` : sql`and id = any(${ids.map(String)}::bigint[])`}
    order by id`.pipe(
    Effect.map((rows) =>
      rows.map((row): ParkedRow => ({
        id: BigInt(row.id),
        subscription: row.subscription,
        partition: row.partition,
        position: BigInt(row.position),
        transactionId: BigInt(row.tx),
        eventId: row.eventid,
        stream: row.stream,
        type: row.type,
        error: row.error,
        parkedAt: row.parkedat
      }))
    )
  )

/**
 * The events subscription `name` parked, oldest first.
 *
 * @since 0.1.0
 * @category parked
 */
export const parked = Effect.fn("PgOperations.parked")(function* (name: string) {
  const sql = yield* SqlClient.SqlClient
  const t = yield* PgSchema.Tables
  return yield* parkedRows(sql, t, name)
})

/**
 * Deletes parked rows of subscription `name` (those with the given ids, or all), returning the rows deleted. The
 * events stay in the log; the subscription will not see them again.
 *
 * @since 0.1.0
 * @category parked
 */
export const dropParked = Effect.fn("PgOperations.dropParked")(function* (
  name: string,
  ids?: ReadonlyArray<bigint> | undefined
) {
  const sql = yield* SqlClient.SqlClient
  const t = yield* PgSchema.Tables
  const rows = yield* sql<{ id: bigint }>`delete from ${sql(t.parked)} where subscription = ${name}
    ${ids === undefined ? sql`` : sql`and id = any(${ids.map(String)}::bigint[])`}
    returning id`
  return rows.map((row) => BigInt(row.id))
})

/**
 * Where a retry moved a partition's checkpoint, and how many matching events it will deliver again.
 *
 * @since 0.1.0
 * @category parked
 */
export interface Rewind {
  readonly partition: number
  readonly checkpoint: { readonly transactionId: bigint; readonly position: bigint }
  readonly redeliver: number
  readonly retried: ReadonlyArray<bigint>
}

/**
 * Retries parked events of subscription `name` (those with the given ids, or all) by redelivery: in one
 * transaction, each partition's checkpoint moves back to just before its oldest retried event (never forward), and
 * the retried rows are deleted. The worker delivers from there again, as after a crash: the retried events and the
 * partition's later events (at-least-once; handlers must be idempotent). A running worker's next commit finds its
 * checkpoint moved and restarts from the new one; an event that fails again is parked again.
 *
 * @since 0.1.0
 * @category parked
 */
export const retryParked = Effect.fn("PgOperations.retryParked")(function* (
  name: string,
  ids?: ReadonlyArray<bigint> | undefined
) {
  const sql = yield* SqlClient.SqlClient
  const t = yield* PgSchema.Tables
  return yield* sql.withTransaction(
    Effect.gen(function* () {
      const rows = yield* parkedRows(sql, t, name, ids)
      const oldest = new Map<number, ParkedRow>()
      for (const row of rows) {
        const known = oldest.get(row.partition)
        if (known === undefined || isBefore(row, known)) oldest.set(row.partition, row)
      }
      const rewinds: Array<Rewind> = []
      for (const [partition, row] of [...oldest].sort(([a], [b]) => a - b)) {
        rewinds.push(
          yield* rewind(
            sql,
            t,
            name,
            row,
            rows.filter((r) => r.partition === partition).map((r) => r.id)
          )
        )
      }
      if (rows.length > 0) {
        yield* sql`delete from ${sql(t.parked)} where id = any(${rows.map((r) => String(r.id))}::bigint[])`
      }
      return rewinds
    })
  )
})

const isBefore = (a: ParkedRow, b: ParkedRow) =>
  a.transactionId < b.transactionId || (a.transactionId === b.transactionId && a.position < b.position)

const rewind = Effect.fnUntraced(function* (
  sql: SqlClient.SqlClient,
  t: PgSchema.TableNames,
  name: string,
  row: ParkedRow,
  retried: ReadonlyArray<bigint>
) {
  // The cursor just before (tx, position): reads take (transaction_id, position) > cursor.
  const tx = String(row.transactionId)
  const pos = row.position - 1n
  const [moved] = yield* sql<{ partitions: number; filter: string }>`
    update ${sql(t.checkpoints)} set transaction_id = ${tx}::xid8, position = ${pos}, updated_at = now()
    where subscription = ${name} and partition = ${row.partition}
      and (transaction_id, position) > (${tx}::xid8, ${pos})
    returning partitions, filter::text as filter`
  const [current] = yield* sql<{ tx: string; pos: bigint; partitions: number; filter: string }>`
    select transaction_id::text as tx, position as pos, partitions, filter::text as filter
    from ${sql(t.checkpoints)} where subscription = ${name} and partition = ${row.partition}`
  const cursor = current === undefined ? { tx, pos } : { tx: current.tx, pos: BigInt(current.pos) }
  const filter = parseFilter(moved?.filter ?? current?.filter ?? "{}")
  const partitions = moved?.partitions ?? current?.partitions ?? 1
  const [count] = yield* sql<{ n: number }>`select count(*)::int as n from ${sql(t.events)}
    where (transaction_id, position) > (${cursor.tx}::xid8, ${cursor.pos})
      ${filterFragment(sql, filter, partitions, row.partition)}`
  return {
    partition: row.partition,
    checkpoint: { transactionId: BigInt(cursor.tx), position: cursor.pos },
    redeliver: count!.n,
    retried
  } satisfies Rewind
})

/**
 * One stored row as `readPage` returns it: the recorded event, or why the row cannot become one.
 *
 * @since 0.1.0
 * @category log
 */
export type PageRow = Result.Result<EventStore.RecordedEvent, EventStore.UnreadableEvent>

/**
 * Up to `limit` rows of the log after position `after`, in position order, each decoded on its own: a damaged row
 * is an `UnreadableEvent` in its place and the rows after it are still returned (what `verify` needs, where a read
 * through the store would stop at the first). Use the last row's position as the next `after`.
 *
 * @since 0.1.0
 * @category log
 */
export const readPage = Effect.fn("PgOperations.readPage")(function* (after: bigint, limit: number) {
  const sql = yield* SqlClient.SqlClient
  const t = yield* PgSchema.Tables
  yield* EventRow.probe(sql)
  const columns = EventRow.columnsOf(sql)
  const rows = yield* sql`select ${columns.fragment} from ${sql(t.events)} e
    where e.position > ${after} order by e.position limit ${limit}`.values
  return rows.map((values): { readonly position: bigint; readonly row: PageRow } => {
    const row = EventRow.fromValues(values)
    return { position: BigInt(row.position), row: EventRow.decode(row, columns.binary) }
  })
})
