/**
 * The raw-SQL baselines every workload is compared with, on the same driver and an identical table shape:
 * R0 = a plain INSERT (unnest for batches) into an events table; R1 = one hand-written statement doing the same
 * optimistic-concurrency append evently does (streams row + events). "R0 coalesced" is a bare group commit: R0's rows
 * from concurrent writers gathered into one plain INSERT, with no check of any kind (the no-queue ceiling, "R0
 * batched", is in `Workloads.ts`).
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as SqlClient from "effect/sql/SqlClient"
import type * as SqlError from "effect/sql/SqlError"

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

/** One row of an R0 append, as the coalescer gathers it. */
export interface R0Row {
  readonly stream: string
  readonly version: number
  readonly event: BenchEvent
  readonly recordedAt: Date
}

/**
 * R0 coalesced: each writer's row waits in a queue; whenever no statement is in flight, everything waiting (up to 64
 * rows) goes out as one plain INSERT in one transaction. No expected-version check, no idempotency, no per-row
 * outcome: one statement in flight, as evently's queue runs by default, for reading evently's figures.
 */
export const r0Coalescer = Effect.fnUntraced(function* (sql: SqlClient.SqlClient, table: string) {
  const context = yield* Effect.context<never>()
  interface Waiting {
    readonly row: R0Row
    readonly done: Deferred.Deferred<void, SqlError.SqlError>
  }
  const pending: Array<Waiting> = []
  let writing = false
  const insert = (rows: ReadonlyArray<R0Row>) =>
    sql`insert into ${sql(table)} (stream, category, stream_version, event_id, event_type, data, recorded_at)
      select * from unnest(${rows.map((r) => r.stream)}::text[],
        ${rows.map((r) => r.stream.slice(0, r.stream.indexOf("-")))}::text[], ${rows.map((r) => r.version)}::int8[],
        ${rows.map((r) => r.event.eventId)}::uuid[], ${rows.map((r) => r.event.type)}::text[],
        ${rows.map((r) => r.event.data)}::jsonb[], ${rows.map((r) => r.recordedAt.toISOString())}::timestamptz[])`
  const pump: Effect.Effect<void> = Effect.suspend(() => {
    if (writing || pending.length === 0) return Effect.void
    writing = true
    const batch = pending.splice(0, 64)
    return Effect.forkDetach(
      Effect.exit(insert(batch.map((w) => w.row))).pipe(
        Effect.flatMap((exit) =>
          Effect.sync(() => {
            for (const w of batch) Deferred.doneUnsafe(w.done, Exit.asVoid(exit))
          })
        ),
        Effect.ensuring(
          Effect.suspend(() => {
            writing = false
            return Effect.andThen(Effect.yieldNow, pump)
          })
        ),
        Effect.provideContext(context)
      )
    )
  })
  return (row: R0Row): Effect.Effect<void, SqlError.SqlError> =>
    Effect.suspend(() => {
      const done = Deferred.makeUnsafe<void, SqlError.SqlError>()
      pending.push({ row, done })
      return Effect.andThen(pump, Deferred.await(done))
    })
})
