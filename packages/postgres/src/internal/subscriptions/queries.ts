/**
 * What a subscription's state reads in the database: `status` (checkpoints, lag, the pid of a transaction holding
 * the subscription back), `waitUntilCaughtUp` and `parked`. A name with no checkpoint row reads the ephemeral
 * subscriptions of that name running in this process.
 */
import * as Subscriptions from "@evently/store/Subscriptions"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Schedule from "effect/Schedule"
import type * as SqlClient from "effect/sql/SqlClient"
import type * as PgSchema from "../../PgSchema.ts"
import { filterFragment, metricAttributes, storage } from "./cursor.ts"
import type * as Ephemeral from "./ephemeral.ts"
import { lagEvents, lagSeconds } from "./metrics.ts"

/** The service's `status`, `waitUntilCaughtUp` and `parked`. */
export const make = (
  sql: SqlClient.SqlClient,
  t: PgSchema.TableNames,
  ephemerals: ReturnType<typeof Ephemeral.makeRegistry>
) => {
  // A name's checkpoints: its rows, else the least advanced cursor of each partition among the ephemeral
  // subscriptions of that name running in this process.
  const checkpointsOf = (name: string) =>
    sql<Ephemeral.CheckpointRow>`select partition, partitions, transaction_id::text as tx, position as pos, filter
    from ${sql(t.checkpoints)} where subscription = ${name} order by partition`.pipe(
      Effect.map((rows): ReadonlyArray<Ephemeral.CheckpointRow> => (rows.length > 0 ? rows : ephemerals.rows(name)))
    )

  const status = Effect.fn("PgSubscriptions.status")(function* (name: string) {
    yield* Subscriptions.validName(name)
    const rows = yield* checkpointsOf(name).pipe(Effect.mapError(storage("status")))
    const partitions: Array<Subscriptions.PartitionStatus> = []
    for (const row of rows) partitions.push(yield* partitionStatus(name, row).pipe(Effect.mapError(storage("status"))))
    return { subscription: name, partitions }
  })

  const partitionStatus = Effect.fnUntraced(function* (name: string, row: Ephemeral.CheckpointRow) {
    const [lag] = yield* sql<{ lag: number; seconds: number | null; held: number }>`
    select count(*)::int as lag,
      extract(epoch from now() - min(recorded_at) filter (where isfinite(recorded_at)))::float8 as seconds,
      count(*) filter (where transaction_id >= pg_snapshot_xmin(pg_current_snapshot()))::int as held
    from ${sql(t.events)}
    where (transaction_id, position) > (${row.tx}::xid8, ${row.pos})
      ${filterFragment(sql, row.filter, row.partitions, row.partition)}`
    let heldBackByPid: number | undefined
    if (lag!.held > 0) {
      const [pinning] = yield* sql<{ pid: number }>`
      select pid from pg_stat_activity
      where backend_xid is not null
        and backend_xid::text::bigint = pg_snapshot_xmin(pg_current_snapshot())::text::bigint % 4294967296
      limit 1`
      heldBackByPid = pinning?.pid
    }
    const attributes = metricAttributes(name, row.partition)
    yield* Metric.update(Metric.withAttributes(lagEvents, attributes), lag!.lag)
    yield* Metric.update(Metric.withAttributes(lagSeconds, attributes), lag!.seconds ?? 0)
    return {
      partition: row.partition,
      checkpoint: { transactionId: BigInt(row.tx), position: BigInt(row.pos) },
      lagEvents: lag!.lag,
      lagSeconds: Math.max(0, lag!.seconds ?? 0),
      heldBackByPid
    } satisfies Subscriptions.PartitionStatus
  })

  // The timeout bounds the whole call, its first query included: with a pool that a running subscription has
  // exhausted, even that one waits for a connection.
  const waitUntilCaughtUp = Effect.fn("PgSubscriptions.waitUntilCaughtUp")(function* (
    name: string,
    waitOptions?: { readonly timeout?: Duration.Input | undefined }
  ) {
    yield* Subscriptions.validName(name)
    const duration = yield* Subscriptions.waitTimeout(name, waitOptions?.timeout)
    const wait = Effect.gen(function* () {
      const [snapshot] = yield* sql<{ snapshot: string }>`select pg_current_snapshot()::text as snapshot`
      const caughtUp = Effect.gen(function* () {
        const rows = yield* checkpointsOf(name)
        if (rows.length === 0 || rows.length < rows[0]!.partitions) return false
        for (const row of rows) {
          const [pending] = yield* sql<{ pending: boolean }>`select exists(
            select 1 from ${sql(t.events)}
            where (transaction_id, position) > (${row.tx}::xid8, ${row.pos})
              and pg_visible_in_snapshot(transaction_id, ${snapshot!.snapshot}::pg_snapshot)
              ${filterFragment(sql, row.filter, row.partitions, row.partition)}
          ) as pending`
          if (pending!.pending) return false
        }
        return true
      })
      yield* Effect.repeat(caughtUp, { until: (done: boolean) => done, schedule: Schedule.spaced("20 millis") })
    }).pipe(Effect.mapError(storage("wait")))
    return yield* Effect.timeoutOrElse(wait, {
      duration,
      orElse: () => Effect.fail(new Subscriptions.CaughtUpTimeout({ subscription: name }))
    })
  })

  const parked = Effect.fn("PgSubscriptions.parked")(function* (name: string) {
    yield* Subscriptions.validName(name)
    const rows = yield* sql<{
      partition: number
      position: bigint
      event_id: string
      stream: string
      event_type: string
      error: string
    }>`select partition, position, event_id::text as event_id, stream, event_type, error
    from ${sql(t.parked)} where subscription = ${name} order by id`.pipe(Effect.mapError(storage("parked")))
    return [
      ...rows.map((row): Subscriptions.ParkedEvent => ({
        subscription: name,
        partition: row.partition,
        position: BigInt(row.position),
        eventId: row.event_id,
        stream: row.stream,
        type: row.event_type,
        error: row.error
      })),
      ...ephemerals.parked(name)
    ]
  })

  return { status, waitUntilCaughtUp, parked }
}
