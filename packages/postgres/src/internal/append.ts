/**
 * The append statement of the Postgres event store and how an append maps onto its parameters. Internal: kept apart
 * so a benchmark can run exactly this statement against a hand-written baseline.
 *
 * Subscriptions read the log in `(transaction_id, position)` order and only below the oldest transaction still in
 * progress (`pg_snapshot_xmin`), which is what makes their cursor gap-free. Both statements give an append's events the
 * same `transaction_id`, its key: the greater of the writing transaction's id and the key of the stream's previous
 * events, which the stream row carries (`last_transaction_id`; none on a row older than that column, and `greatest`
 * ignores a null). The key is computed and stored back while the append holds the stream row's lock (in the `on
 * conflict do update` or `update` that bumps the version, which Read Committed evaluates on the row version the
 * previous writer committed), and positions are drawn after the lock is taken, so along a stream both the key and the
 * position grow: a stream's events are read in version order, even when a transaction took its id (wrote something
 * else) before a newer transaction wrote the stream's previous event and committed first. The cursor stays gap-free: a
 * key is never below its writer's own id, and while a transaction is in progress its id is at least the `xmin` of any
 * snapshot, so an event not yet committed always has a key at or above the `xmin` a reader reads below.
 */
import type { EventStore } from "@evently/store"
import type * as SqlClient from "effect/sql/SqlClient"
import type * as PgSchema from "../PgSchema.ts"

/** The parameters of the append statement, as bound. */
export interface AppendParameters {
  readonly stream: string
  readonly category: string
  readonly count: number
  readonly mayCreate: boolean
  readonly anyVersion: boolean
  readonly exact: boolean
  readonly expectedVersion: number
  readonly eventIds: ReadonlyArray<string>
  readonly types: ReadonlyArray<string>
  readonly schemaVersions: ReadonlyArray<number>
  readonly data: ReadonlyArray<string>
  readonly metadata: ReadonlyArray<string>
  readonly recordedAt: Date
  readonly channel: string
  readonly notify: boolean
  /**
   * Not bound, it shapes the text: look the event ids up before writing (in a caller's transaction, where the unique
   * violation of an id stored already would abort that transaction), or only when nothing was written (see
   * {@link statement}).
   */
  readonly probe: boolean
}

/**
 * How a prepared append maps onto the statement's parameters: whether it may create the stream (`Any`, `NoStream`,
 * `Exact(0)`), whether an existing stream passes unchecked (`Any`), and the version an `Exact` update requires.
 * `probe` (default `true`): see {@link AppendParameters.probe}.
 */
export const parameters = (
  prepared: EventStore.PreparedAppend,
  recordedAt: Date,
  channel: string,
  notify: boolean,
  probe = true
): AppendParameters => {
  const expected = prepared.expected
  const exactVersion = expected._tag === "Exact" ? expected.version : 0
  return {
    stream: prepared.stream,
    category: prepared.category,
    count: prepared.events.length,
    mayCreate:
      expected._tag === "Any" || expected._tag === "NoStream" || (expected._tag === "Exact" && exactVersion === 0),
    anyVersion: expected._tag === "Any",
    exact: expected._tag === "Exact",
    expectedVersion: exactVersion,
    eventIds: prepared.events.map((e) => e.eventId),
    types: prepared.events.map((e) => e.type),
    schemaVersions: prepared.events.map((e) => e.schemaVersion),
    data: prepared.events.map((e) => e.data),
    metadata: prepared.events.map((e) => e.metadata),
    recordedAt,
    channel,
    notify,
    probe
  }
}

/**
 * Whether any of the input's event ids is stored: one unique-index probe per event, stopping at the first found (an
 * `= any(array)` filter would be planned as a scan in a generic plan).
 */
const probeIds = (sql: SqlClient.SqlClient, tables: PgSchema.TableNames) => sql`select 1 as found from input i
  cross join lateral (select 1 from ${sql(tables.events)} e where e.event_id = i.event_id limit 1) e
  limit 1`

/**
 * The append statement: one text for any batch size (the events travel as arrays and are `unnest`ed), so it stays
 * prepared (two texts: with and without `probe`). In one statement it
 * 1. finds whether any of the event ids is stored already (then nothing is written: the caller checks idempotency),
 *    one unique-index probe per event (an `= any(array)` filter would be planned as a scan in a generic plan);
 * 2. bumps the stream's version, creating the row for `Any`/`NoStream`/`Exact(0)` (`insert … on conflict`, which
 *    sees and locks a row another transaction just committed) or updating it for `StreamExists`/`Exact(n)`
 *    (`update … where`, rechecked on the latest row version after a concurrent writer commits), so the expectation
 *    is checked under the stream row's lock, and moves the stream's key up to this transaction's id (see the module
 *    docs);
 * 3. inserts the events only if the version was bumped, numbered from the new version, with the stream's key;
 * 4. notifies the events table's channel with the category, once, only if something was written;
 * 5. returns whether it wrote, the new version, the positions, and, only when it wrote nothing, the version its
 *    snapshot saw (one index lookup left out of every append that writes).
 *
 * Without `probe` (an append outside a caller's transaction) step 1 is left out: it cost one index probe per event
 * (10% of the server's time for 1,000 events), and the insert probes the same unique index anyway. An id stored
 * already then fails the insert with a unique violation, which rolls the whole statement back (nothing written, the
 * version bump undone), and the caller treats it as a duplicate; an append that wrote nothing (its expectation failed,
 * as a retried `NoStream` or `Exact` append's does) is looked up by its ids after the fact, as `duplicate`.
 */
export const statement = (sql: SqlClient.SqlClient, tables: PgSchema.TableNames, p: AppendParameters) => sql<{
  readonly duplicate: boolean
  readonly version: number | null
  /** The version the statement's snapshot saw, only when it wrote nothing (null otherwise: not looked up). */
  readonly actual: number | null
  readonly positions: ReadonlyArray<bigint> | null
}>`with input as (
  select * from unnest(
    ${p.eventIds}::uuid[], ${p.types}::text[], ${p.schemaVersions}::int4[], ${p.data}::jsonb[], ${p.metadata}::jsonb[]
  ) with ordinality as i (event_id, event_type, schema_version, data, metadata, n)
),
duplicate as (
  ${p.probe ? probeIds(sql, tables) : sql`select 1 as found where false`}
),
created as (
  insert into ${sql(tables.streams)} as s (stream, category, version, last_transaction_id)
  select ${p.stream}::text, ${p.category}::text, ${p.count}::int8, pg_current_xact_id()
  where ${p.mayCreate}::bool and not exists (select 1 from duplicate)
  on conflict (stream) do update set version = s.version + excluded.version,
    last_transaction_id = greatest(s.last_transaction_id, excluded.last_transaction_id)
  where ${p.anyVersion}::bool
  returning s.version, s.last_transaction_id
),
updated as (
  update ${sql(tables.streams)} as s set version = s.version + ${p.count}::int8,
    last_transaction_id = greatest(s.last_transaction_id, pg_current_xact_id())
  where s.stream = ${p.stream}::text and not ${p.mayCreate}::bool
    and (not ${p.exact}::bool or s.version = ${p.expectedVersion}::int8)
    and not exists (select 1 from duplicate)
  returning s.version, s.last_transaction_id
),
bumped as (
  select version, last_transaction_id from created union all select version, last_transaction_id from updated
),
appended as (
  insert into ${sql(tables.events)}
    (transaction_id, stream, category, stream_version, event_id, event_type, schema_version, data, metadata,
    recorded_at)
  select b.last_transaction_id, ${p.stream}::text, ${p.category}::text, b.version - ${p.count}::int8 + i.n,
    i.event_id, i.event_type, i.schema_version, i.data, i.metadata, ${p.recordedAt}::timestamptz
  from input i cross join bumped b
  order by i.n
  returning position
),
notified as (
  select pg_notify(${p.channel}::text, ${p.category}::text) from bumped where ${p.notify}::bool
)
select
  ${
    p.probe
      ? sql`exists (select 1 from duplicate)`
      : sql`case when exists (select 1 from bumped) then false else exists (${probeIds(sql, tables)}) end`
  } as duplicate,
  (select version::int4 from bumped) as version,
  case when exists (select 1 from bumped) then null
    else coalesce((select version::int4 from ${sql(tables.streams)} where stream = ${p.stream}::text), 0)
  end as actual,
  (select array_agg(position order by position) from appended) as positions,
  (select count(*)::int4 from notified) as notified`

/** One append of a combined (group-commit) statement: its checked input and the time it was issued. */
export interface BatchAppend {
  readonly prepared: EventStore.PreparedAppend
  readonly recordedAt: Date
}

/**
 * How an append's expectation travels in the combined statement: `-1` for `Any`, `0` for a stream that must not exist
 * (`NoStream`, `Exact(0)`), `-2` for `StreamExists`, and `v` for `Exact(v)`.
 */
const expectationCode = (expected: EventStore.PreparedAppend["expected"]): number =>
  expected._tag === "Any"
    ? -1
    : expected._tag === "NoStream"
      ? 0
      : expected._tag === "StreamExists"
        ? -2
        : expected.version

/**
 * The parameters of the combined statement, as bound: one array entry per event, each carrying its append's fields
 * (`n`, 1-based, is the event's place in its append). `shape` says which ways of bumping a stream's version the batch
 * needs, so the statement carries only those.
 */
export interface BatchParameters {
  readonly streams: ReadonlyArray<string>
  readonly categories: ReadonlyArray<string>
  readonly counts: ReadonlyArray<number>
  readonly expected: ReadonlyArray<number>
  readonly n: ReadonlyArray<number>
  readonly eventIds: ReadonlyArray<string>
  readonly types: ReadonlyArray<string>
  readonly schemaVersions: ReadonlyArray<number>
  readonly data: ReadonlyArray<string>
  readonly metadata: ReadonlyArray<string>
  readonly recordedAt: ReadonlyArray<string>
  /** The batch's distinct categories, each notified once when the batch wrote anything. */
  readonly notifyCategories: ReadonlyArray<string>
  readonly channel: string
  readonly notify: boolean
  readonly shape: {
    /** Some append may only create its stream (`NoStream`, `Exact(0)`). */
    readonly create: boolean
    /** Some append creates its stream or adds to it unchecked (`Any`). */
    readonly any: boolean
    /** Some append adds to an existing stream (`StreamExists`, `Exact(v)` with v > 0). */
    readonly update: boolean
  }
}

/** How a batch of appends (to distinct streams, with distinct event ids) maps onto the combined statement's arrays. */
export const batchParameters = (
  appends: ReadonlyArray<BatchAppend>,
  channel: string,
  notify: boolean
): BatchParameters => {
  const p = {
    streams: [] as Array<string>,
    categories: [] as Array<string>,
    counts: [] as Array<number>,
    expected: [] as Array<number>,
    n: [] as Array<number>,
    eventIds: [] as Array<string>,
    types: [] as Array<string>,
    schemaVersions: [] as Array<number>,
    data: [] as Array<string>,
    metadata: [] as Array<string>,
    recordedAt: [] as Array<string>
  }
  const categories = new Set<string>()
  let create = false
  let any = false
  let update = false
  for (const { prepared, recordedAt } of appends) {
    const code = expectationCode(prepared.expected)
    if (code === 0) create = true
    else if (code === -1) any = true
    else update = true
    categories.add(prepared.category)
    const at = recordedAt.toISOString()
    const count = prepared.events.length
    prepared.events.forEach((event, i) => {
      p.streams.push(prepared.stream)
      p.categories.push(prepared.category)
      p.counts.push(count)
      p.expected.push(code)
      p.n.push(i + 1)
      p.eventIds.push(event.eventId)
      p.types.push(event.type)
      p.schemaVersions.push(event.schemaVersion)
      p.data.push(event.data)
      p.metadata.push(event.metadata)
      p.recordedAt.push(at)
    })
  }
  return { ...p, notifyCategories: [...categories], channel, notify, shape: { create, any, update } }
}

/** One row of the combined statement's result: an event it wrote, an append it did not write, or the NOTIFY count. */
export interface BatchRow {
  /** The append's stream (a batch holds one append per stream); null on the NOTIFY row. */
  readonly stream: string | null
  /** For a written event: its stream version and position. */
  readonly version: number | null
  readonly position: bigint | null
  /** For an append that wrote nothing: the version its snapshot saw, and whether its first event id is stored. */
  readonly actual: number | null
  readonly duplicate: boolean | null
}

/**
 * The combined (group-commit) statement: many appends to distinct streams at once, each keeping its own outcome, with
 * the checks of the one-append {@link statement}. The input is one `unnest`ed row per event. Per append it bumps the
 * stream's version and key under the stream row's lock (an append whose check fails bumps nothing and writes nothing;
 * its neighbours are unaffected), then inserts its events numbered from the new version, with the stream's key, in
 * input order. The batch's transaction takes its id at its first write and may then wait for another stream's lock,
 * as any transaction that took its id early: the key keeps each stream in order all the same (see the module docs). Only the ways of
 * bumping the batch needs are in the text (creating, `Any`, updating), so a batch of one kind runs one DML step.
 *
 * Unlike the one-append statement it does not look the event ids up before writing: a retried append of `Any` or
 * `StreamExists` hits the unique index, which fails the statement, and the caller splits the batch down to that append,
 * which the one-append statement then recognises. An append that wrote nothing gets one row with the version its
 * snapshot saw and whether its first event id is stored (a retried `NoStream`/`Exact` append fails its check, and that
 * tells a retry from a conflict). Each of the batch's categories is notified once when the batch wrote anything.
 *
 * The rows: one per written event (`stream`, `version`, `position`), one per append that wrote nothing (`stream`,
 * `actual`, `duplicate`), and one with `stream` null, the NOTIFY count, which makes the NOTIFY step run. They name the
 * stream rather than the append's place in the batch: joining the written events back to the input for it cost 10% of
 * the statement at 32 appends (planned as a nested loop on the `unnest`'s default row estimate). The caller guarantees
 * that no two appends of a batch share a stream or an event id.
 */
export const batchStatement = (sql: SqlClient.SqlClient, tables: PgSchema.TableNames, p: BatchParameters) => {
  const bumps = [
    p.shape.create
      ? sql`insert into ${sql(tables.streams)} as s (stream, category, version, last_transaction_id)
  select i.stream, i.category, i.count, pg_current_xact_id() from input i where i.n = 1 and i.expected = 0
  order by i.stream
  on conflict (stream) do nothing
  returning s.stream, s.version, s.last_transaction_id`
      : undefined,
    p.shape.any
      ? sql`insert into ${sql(tables.streams)} as s (stream, category, version, last_transaction_id)
  select i.stream, i.category, i.count, pg_current_xact_id() from input i where i.n = 1 and i.expected = -1
  order by i.stream
  on conflict (stream) do update set version = s.version + excluded.version,
    last_transaction_id = greatest(s.last_transaction_id, excluded.last_transaction_id)
  returning s.stream, s.version, s.last_transaction_id`
      : undefined,
    p.shape.update
      ? sql`update ${sql(tables.streams)} as s set version = s.version + i.count,
    last_transaction_id = greatest(s.last_transaction_id, pg_current_xact_id())
  from input i
  where i.n = 1 and s.stream = i.stream and (i.expected = -2 or (i.expected > 0 and s.version = i.expected))
  returning s.stream, s.version, s.last_transaction_id`
      : undefined
  ].filter((bump) => bump !== undefined)
  const bumped = bumps.map(
    (bump, index) => sql`${sql.literal(`bump${index}`)} as (
  ${bump}
)`
  )
  const union = sql.join(
    " union all ",
    false
  )(bumps.map((_, index) => sql`select stream, version, last_transaction_id from ${sql.literal(`bump${index}`)}`))
  return sql<BatchRow>`with input as (
  select * from unnest(
    ${p.streams}::text[], ${p.categories}::text[], ${p.counts}::int8[], ${p.expected}::int8[], ${p.n}::int8[],
    ${p.eventIds}::uuid[], ${p.types}::text[], ${p.schemaVersions}::int4[], ${p.data}::jsonb[], ${p.metadata}::jsonb[],
    ${p.recordedAt}::timestamptz[]
  ) with ordinality as i (stream, category, count, expected, n, event_id, event_type, schema_version, data, metadata,
    recorded_at, k)
),
${sql.join(",\n", false)(bumped)},
bumped as (${union}),
appended as (
  insert into ${sql(tables.events)}
    (transaction_id, stream, category, stream_version, event_id, event_type, schema_version, data, metadata,
    recorded_at)
  select b.last_transaction_id, i.stream, i.category, b.version - i.count + i.n, i.event_id, i.event_type,
    i.schema_version, i.data, i.metadata, i.recorded_at
  from input i join bumped b on b.stream = i.stream
  order by i.k
  returning stream, stream_version, position
),
notified as (
  select pg_notify(${p.channel}::text, c.category) from unnest(${p.notifyCategories}::text[]) as c (category)
  where ${p.notify}::bool and exists (select 1 from bumped)
)
select a.stream, a.stream_version::int4 as version, a.position, null::int4 as actual, null::bool as duplicate
from appended a
union all
select i.stream, null, null,
  coalesce((select s.version::int4 from ${sql(tables.streams)} s where s.stream = i.stream), 0),
  exists (select 1 from ${sql(tables.events)} e where e.event_id = i.event_id)
from input i
where i.n = 1 and not exists (select 1 from bumped b where b.stream = i.stream)
union all
select null, null, null, count(*)::int4, null from notified`
}
