/**
 * The raw-SQL baselines every workload is compared with, on the same driver and an identical table shape:
 * R0 = a plain INSERT (unnest for batches) into an events table; R1 = one hand-written statement doing the same
 * optimistic-concurrency append evently does (streams row + events).
 */
import type * as SqlClient from "effect/sql/SqlClient"

export interface BenchEvent {
  readonly eventId: string
  readonly type: string
  readonly data: string
}

const arrays = (events: ReadonlyArray<BenchEvent>) => ({
  ids: events.map((e) => e.eventId),
  types: events.map((e) => e.type),
  data: events.map((e) => e.data)
})

/** R0: append without any concurrency check, `version` supplied by the caller. */
export const r0Append = (
  sql: SqlClient.SqlClient,
  table: string,
  stream: string,
  firstVersion: number,
  events: ReadonlyArray<BenchEvent>,
  recordedAt: Date
) => {
  const category = stream.slice(0, stream.indexOf("-"))
  if (events.length === 1) {
    const e = events[0]!
    return sql`insert into ${sql(table)} (stream, category, stream_version, event_id, event_type, data, recorded_at)
      values (${stream}, ${category}, ${firstVersion}, ${e.eventId}::uuid, ${e.type}, ${e.data}::jsonb, ${recordedAt})`
  }
  const a = arrays(events)
  return sql`insert into ${sql(table)} (stream, category, stream_version, event_id, event_type, data, recorded_at)
    select ${stream}, ${category}, ${firstVersion} - 1 + t.n, t.id, t.type, t.data, ${recordedAt}
    from unnest(${a.ids}::uuid[], ${a.types}::text[], ${a.data}::jsonb[]) with ordinality as t(id, type, data, n)`
}

/**
 * R1: the optimistic-concurrency append as one statement: `expected` is 0 for a new stream, or the exact version.
 * Returns no row when the expectation failed.
 */
export const r1Append = (
  sql: SqlClient.SqlClient,
  tables: { readonly events: string; readonly streams: string },
  stream: string,
  expected: number,
  events: ReadonlyArray<BenchEvent>,
  recordedAt: Date
) => {
  const category = stream.slice(0, stream.indexOf("-"))
  const a = arrays(events)
  const count = events.length
  const bump =
    expected === 0
      ? sql`insert into ${sql(tables.streams)} (stream, category, version) values (${stream}, ${category}, ${count})
          on conflict do nothing returning version`
      : sql`update ${sql(tables.streams)} set version = version + ${count}
          where stream = ${stream} and version = ${expected} returning version`
  return sql<{ position: string }>`with s as (${bump})
    insert into ${sql(tables.events)} (stream, category, stream_version, event_id, event_type, data, recorded_at)
    select ${stream}, ${category}, s.version - ${count} + t.n, t.id, t.type, t.data, ${recordedAt}
    from s, unnest(${a.ids}::uuid[], ${a.types}::text[], ${a.data}::jsonb[]) with ordinality as t(id, type, data, n)
    returning position`
}
