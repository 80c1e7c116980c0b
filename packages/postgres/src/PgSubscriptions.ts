/**
 * The Postgres adapter of `Subscriptions`: a gap-free `(transaction_id, position)` cursor on the events table, one
 * checkpoint row per `(subscription, partition)`, one active worker per partition across processes (a session
 * advisory lock on a held connection), LISTEN/NOTIFY wake-ups with a poll as the safety net, and a refusal to resume
 * from a checkpoint written by another cluster.
 *
 * A worker's session is built from parts under `internal/subscriptions/`: the held connection, the lease, the
 * checkpoint (durable or ephemeral), the committer and the reader.
 *
 * @since 0.1.0
 */
import { PgClient } from "@effect/sql-pg"
import * as Subscriptions from "@evently/store/Subscriptions"
import * as SubscriptionLifecycle from "@evently/store/SubscriptionLifecycle"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as SqlClient from "effect/sql/SqlClient"
import * as SqlError from "effect/sql/SqlError"
import * as Stream from "effect/Stream"
import * as Checkpoint from "./internal/subscriptions/checkpoint.ts"
import * as Committer from "./internal/subscriptions/committer.ts"
import * as Connection from "./internal/subscriptions/connection.ts"
import { filterFragment, filterOf, storage, metricAttributes } from "./internal/subscriptions/cursor.ts"
import * as Ephemeral from "./internal/subscriptions/ephemeral.ts"
import * as Lease from "./internal/subscriptions/lease.ts"
import * as Metrics from "./internal/subscriptions/metrics.ts"
import * as Reader from "./internal/subscriptions/reader.ts"
import * as Start from "./internal/subscriptions/start.ts"
import * as PgSchema from "./PgSchema.ts"
import * as PgTransaction from "./PgTransaction.ts"

/**
 * Settings of the adapter: how often a waiting worker tries to take a partition's lock (default 500 ms), how long a
 * worker waits before reconnecting after a lost connection or a failed commit (default 500 ms), and the longest wait
 * `run` backs off to when faults repeat without progress (default 30 seconds; the wait doubles from
 * `reconnectDelay`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly lockRetryInterval?: Duration.Input | undefined
  readonly reconnectDelay?: Duration.Input | undefined
  readonly maxReconnectDelay?: Duration.Input | undefined
}

/**
 * Events committed to the checkpoint, by subscription and partition.
 *
 * @since 0.1.0
 * @category metrics
 */
export const eventsCommitted = Metrics.eventsCommitted

/**
 * The position of a subscription partition's checkpoint.
 *
 * @since 0.1.0
 * @category metrics
 */
export const checkpointPosition = Metrics.checkpointPosition

/**
 * Matching events a subscription partition has not handled yet (updated by `status` and when a read comes back
 * empty).
 *
 * @since 0.1.0
 * @category metrics
 */
export const lagEvents = Metrics.lagEvents

/**
 * The age in seconds of the oldest event a subscription partition has not handled (updated by `status`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const lagSeconds = Metrics.lagSeconds

/**
 * Re-bases a subscription's checkpoints on this cluster: every partition's checkpoint is set to `start` (default
 * `End`: only events that commit from now on) as resolved in this database, and stamped with this cluster's
 * `system_identifier`. Run it after restoring a dump into another cluster, when a worker refuses to resume with
 * `CheckpointFromAnotherCluster`, having decided where the subscription should go on from (a projection that must
 * see everything again takes `Beginning` and rebuilds). Stop the subscription's workers first. A name with no
 * checkpoint fails with `UnknownSubscription` and creates nothing.
 *
 * @since 0.1.0
 * @category maintenance
 */
export const rebase = Effect.fn("PgSubscriptions.rebase")(function* (
  name: string,
  start: Subscriptions.Start = Subscriptions.End
) {
  const reason = Subscriptions.nameProblem(name) ?? Subscriptions.startProblem(start)
  if (reason !== undefined) return yield* new Subscriptions.InvalidSubscription({ subscription: String(name), reason })
  const sql = yield* SqlClient.SqlClient
  const t = yield* PgSchema.Tables
  const cursor = yield* Start.resolve(sql, t, name, start)
  const rows = yield* sql<{ ok: number }>`update ${sql(t.checkpoints)} set
      transaction_id = ${String(cursor.tx)}::xid8,
      position = ${cursor.pos},
      system_identifier = (select system_identifier from pg_control_system()),
      xid_epoch = pg_current_xact_id()::text::bigint >> 32,
      updated_at = now()
    where subscription = ${name}
    returning 1 as ok`.pipe(Effect.mapError(storage("rebase")))
  if (rows.length === 0) return yield* new Subscriptions.UnknownSubscription({ subscription: name })
})

/**
 * Builds the service on the `SqlClient` in context. LISTEN needs `PgClient`; without it (or when LISTEN fails) the
 * workers poll, and say so in the log.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (options: Options = {}) {
  const sql = yield* SqlClient.SqlClient
  const pg = yield* Effect.serviceOption(PgClient.PgClient)
  const t = yield* PgSchema.Tables
  const reconnectDelay = Duration.fromInputUnsafe(options.reconnectDelay ?? "500 millis")
  const maxReconnectDelay = Duration.fromInputUnsafe(options.maxReconnectDelay ?? "30 seconds")
  const lease: Lease.LeaseSettings = {
    sql,
    localLeases: SubscriptionLifecycle.makeLocalLeases(),
    retry: Duration.fromInputUnsafe(options.lockRetryInterval ?? "500 millis")
  }
  const ephemerals = Ephemeral.makeRegistry(sql, t)
  const lifecycles = yield* SubscriptionLifecycle.make

  // Inside `commitWith`'s transaction a nested transaction is a savepoint: a failed handling rolls back to it.
  const isolate = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    PgTransaction.withTransactionOn(sql, effect).pipe(
      Effect.mapError((error) => (SqlError.isSqlError(error) ? storage("handle")(error) : error))
    ) as Effect.Effect<A, E | Subscriptions.SubscriptionStorageError, R>

  // One session of a partition: hold a connection, take the lease (durable only), LISTEN, load the checkpoint, then
  // read batches whose commits go through the session's committer.
  const session = (
    name: string,
    partition: number,
    opts: Subscriptions.SubscribeOptions | undefined,
    holder: Ephemeral.Holder
  ): Stream.Stream<Subscriptions.Batch, Subscriptions.SubscriptionError> =>
    Stream.unwrap(
      Effect.gen(function* () {
        const poll = Duration.fromInputUnsafe(opts?.pollInterval ?? "1 second")
        const attributes = metricAttributes(name, partition)
        const connection = yield* Connection.reserve(sql)
        if (opts?.ephemeral !== true) yield* Lease.take(lease, connection, name, partition)
        const wake = yield* Reader.listen(pg, t, name, opts, poll)
        const checkpoints =
          opts?.ephemeral === true
            ? yield* ephemerals.checkpoint(name, partition, opts, holder)
            : yield* Checkpoint.durable({ sql, t }, connection, name, partition, opts)
        const committer = yield* Committer.make(sql, checkpoints, attributes)
        return Reader.batches(
          {
            sql,
            t,
            connection,
            committer,
            where: filterFragment(sql, filterOf(opts), Math.max(1, opts?.partitions ?? 1), partition),
            batchSize: opts?.batchSize ?? 100,
            poll,
            wake,
            attributes,
            batchOf: (events, to) => ({
              subscription: name,
              partition,
              events,
              checkpoint: { transactionId: to.tx, position: to.pos },
              commit: committer.commit(to, events.length),
              commitWith: (effect) => committer.commitWith(to, events.length, effect),
              isolate,
              park: committer.park
            })
          },
          checkpoints.initial
        )
      })
    )

  // A session that ends with a storage fault a retry may fix (connection killed, commit failed) or a lost lease
  // starts over from the checkpoint after `reconnectDelay`; any other failure (a checkpoint from another cluster, a
  // permanent fault such as a missing table) ends the stream. `Stream.retry` loops: the restarted session does not
  // nest inside the failed one.
  const resilient = (
    name: string,
    partition: number,
    opts: Subscriptions.SubscribeOptions | undefined
  ): Stream.Stream<Subscriptions.Batch, Subscriptions.SubscriptionError> => {
    const holder: Ephemeral.Holder = { cursor: undefined }
    // Doubling from `reconnectDelay` up to `maxReconnectDelay`; `Stream.retry` starts the schedule over once a
    // session delivers again.
    return session(name, partition, opts, holder).pipe(
      Stream.retry(
        Schedule.exponential(reconnectDelay).pipe(
          Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, maxReconnectDelay))),
          Schedule.while(({ input }: { readonly input: Subscriptions.SubscriptionError }) =>
            Subscriptions.isRecoverable(input)
          ),
          Schedule.tap(({ input }: { readonly input: Subscriptions.SubscriptionError }) =>
            Effect.andThen(
              Effect.gen(function* () {
                yield* (yield* SubscriptionLifecycle.SessionSignals).reconnecting(input.message)
              }),
              input._tag === "LeaseLost"
                ? Effect.void
                : Effect.logWarning(`Subscription '${name}' partition ${partition}: ${input.message}; reconnecting`)
            )
          )
        )
      )
    )
  }

  // Each partition a worker runs holds a connection for its session and one for its LISTEN, and a transactional
  // commit borrows one more: a pool smaller than that would leave the worker waiting for a connection forever.
  const poolProblem = (opts: Subscriptions.RunOptions | undefined): string | undefined => {
    if (Option.isNone(pg) || "stream" in pg.value.config) return undefined
    const max = (pg.value.config as { readonly maxConnections?: number | undefined }).maxConnections ?? 10
    const perPartition = 1 + (opts?.notify === false ? 0 : 1) + (opts?.transactional === true ? 1 : 0)
    // One more, shared, for resolving where a checkpoint starts and for parking events.
    const needed = Subscriptions.partitionsOf(opts).length * perPartition + 1
    return needed <= max
      ? undefined
      : `the connection pool has ${max} connections and this worker needs ${needed}: per partition one for its session, ${opts?.notify === false ? "" : "one for LISTEN, "}${opts?.transactional === true ? "one for its transactional commits, " : ""}for ${Subscriptions.partitionsOf(opts).length} partition(s), and one for starting and parking; raise maxConnections (and leave room for the app's own queries)`
  }

  const subscribe = (name: string, opts?: Subscriptions.SubscribeOptions) =>
    Subscriptions.checked(name, opts, () => {
      const tooSmall = poolProblem(opts)
      return tooSmall !== undefined
        ? Stream.fail(new Subscriptions.InvalidSubscription({ subscription: name, reason: tooSmall }))
        : Stream.mergeAll(
            Subscriptions.partitionsOf(opts).map((partition) => resilient(name, partition, opts)),
            { concurrency: "unbounded" }
          )
    })

  const pinStart = (start: Subscriptions.Start | undefined) =>
    start === undefined || start._tag === "Beginning"
      ? Effect.succeed(start)
      : Effect.map(Start.resolve(sql, t, "(ephemeral)", start), (cursor) => Subscriptions.After(cursor.pos, cursor.tx))
  const runOnPartitions = Subscriptions.makeRun(
    subscribe,
    { initialDelay: reconnectDelay, maxDelay: maxReconnectDelay },
    pinStart,
    lifecycles
  )
  const run: Subscriptions.Subscriptions["Service"]["run"] = (name, handler, opts) => {
    const tooSmall = Subscriptions.problem(name, opts) === undefined ? poolProblem(opts) : undefined
    return tooSmall !== undefined
      ? Effect.fail(new Subscriptions.InvalidSubscription({ subscription: name, reason: tooSmall }))
      : runOnPartitions(name, handler, opts)
  }

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
      duration: waitOptions?.timeout ?? "30 seconds",
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

  return Subscriptions.Subscriptions.of({
    subscribe,
    run,
    status,
    waitUntilCaughtUp,
    parked,
    ...Subscriptions.lifecycleOf(lifecycles)
  })
})

/**
 * The Postgres subscriptions on the `SqlClient` in context (LISTEN through `PgClient` when it is there). Run
 * `PgSchema.migrate` first. Connections: each partition a worker runs holds one pooled connection for its session
 * (lock, reads, plain commits; held while it waits for the lock too) and, once active, one for its LISTEN (none
 * with `notify: false`); transactional commits borrow a third. A worker whose pool is smaller than that fails at
 * once with `InvalidSubscription` (it would otherwise wait for a connection forever); leave room for the app's own
 * queries, `status` and `waitUntilCaughtUp` besides.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<Subscriptions.Subscriptions, never, SqlClient.SqlClient> =>
  Layer.effect(Subscriptions.Subscriptions, make(options))
