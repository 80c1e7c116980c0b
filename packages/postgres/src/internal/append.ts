/**
 * The append statement of the Postgres event store and how an append maps onto its parameters. Internal: kept apart
 * so a benchmark can run exactly this statement against a hand-written baseline.
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
}

/**
 * How a prepared append maps onto the statement's parameters: whether it may create the stream (`Any`, `NoStream`,
 * `Exact(0)`), whether an existing stream passes unchecked (`Any`), and the version an `Exact` update requires.
 */
export const parameters = (
  prepared: EventStore.PreparedAppend,
  recordedAt: Date,
  channel: string,
  notify: boolean
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
    notify
  }
}

/**
 * The append statement: one text for any batch size (the events travel as arrays and are `unnest`ed), so it stays
 * prepared. In one statement it
 * 1. finds whether any of the event ids is stored already (then nothing is written: the caller checks idempotency),
 *    one unique-index probe per event (an `= any(array)` filter would be planned as a scan in a generic plan);
 * 2. bumps the stream's version, creating the row for `Any`/`NoStream`/`Exact(0)` (`insert … on conflict`, which
 *    sees and locks a row another transaction just committed) or updating it for `StreamExists`/`Exact(n)`
 *    (`update … where`, rechecked on the latest row version after a concurrent writer commits), so the expectation
 *    is checked under the stream row's lock;
 * 3. inserts the events only if the version was bumped, numbered from the new version;
 * 4. notifies the events table's channel with the category, once, only if something was written;
 * 5. returns whether it wrote, the new version, the positions, and the version its snapshot saw.
 */
export const statement = (sql: SqlClient.SqlClient, tables: PgSchema.TableNames, p: AppendParameters) => sql<{
  readonly duplicate: boolean
  readonly version: number | null
  readonly actual: number
  readonly positions: ReadonlyArray<bigint> | null
}>`with input as (
  select * from unnest(
    ${p.eventIds}::uuid[], ${p.types}::text[], ${p.schemaVersions}::int4[], ${p.data}::jsonb[], ${p.metadata}::jsonb[]
  ) with ordinality as i (event_id, event_type, schema_version, data, metadata, n)
),
duplicate as (
  select 1 as found from input i
  cross join lateral (select 1 from ${sql(tables.events)} e where e.event_id = i.event_id limit 1) e
  limit 1
),
created as (
  insert into ${sql(tables.streams)} as s (stream, category, version)
  select ${p.stream}::text, ${p.category}::text, ${p.count}::int8
  where ${p.mayCreate}::bool and not exists (select 1 from duplicate)
  on conflict (stream) do update set version = s.version + excluded.version
  where ${p.anyVersion}::bool
  returning s.version
),
updated as (
  update ${sql(tables.streams)} as s set version = s.version + ${p.count}::int8
  where s.stream = ${p.stream}::text and not ${p.mayCreate}::bool
    and (not ${p.exact}::bool or s.version = ${p.expectedVersion}::int8)
    and not exists (select 1 from duplicate)
  returning s.version
),
bumped as (
  select version from created union all select version from updated
),
appended as (
  insert into ${sql(tables.events)}
    (stream, category, stream_version, event_id, event_type, schema_version, data, metadata, recorded_at)
  select ${p.stream}::text, ${p.category}::text, b.version - ${p.count}::int8 + i.n, i.event_id, i.event_type,
    i.schema_version, i.data, i.metadata, ${p.recordedAt}::timestamptz
  from input i cross join bumped b
  order by i.n
  returning position
),
notified as (
  select pg_notify(${p.channel}::text, ${p.category}::text) from bumped where ${p.notify}::bool
)
select
  exists (select 1 from duplicate) as duplicate,
  (select version::int4 from bumped) as version,
  coalesce((select version::int4 from ${sql(tables.streams)} where stream = ${p.stream}::text), 0) as actual,
  (select array_agg(position order by position) from appended) as positions,
  (select count(*)::int4 from notified) as notified`
