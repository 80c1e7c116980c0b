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
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as SqlClient from "effect/sql/SqlClient"
import * as SqlError from "effect/sql/SqlError"
import * as Stream from "effect/Stream"
import * as Checkpoint from "./internal/subscriptions/checkpoint.ts"
import * as EventRow from "./internal/eventRow.ts"
import * as Committer from "./internal/subscriptions/committer.ts"
import * as Connection from "./internal/subscriptions/connection.ts"
import { filterFragment, filterOf, storage, metricAttributes } from "./internal/subscriptions/cursor.ts"
import * as Ephemeral from "./internal/subscriptions/ephemeral.ts"
import * as Lease from "./internal/subscriptions/lease.ts"
import * as Metrics from "./internal/subscriptions/metrics.ts"
import * as Queries from "./internal/subscriptions/queries.ts"
import * as Reader from "./internal/subscriptions/reader.ts"
import * as Start from "./internal/subscriptions/start.ts"
import * as Replica from "./internal/subscriptions/replica.ts"
import * as PgReplica from "./PgReplica.ts"
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
  /**
   * Where sessions read their events (default `"primary"`). With `"replica"`, each partition's session reads through
   * a connection it holds on the streaming replica of `PgReplica.Replica`, while its lease, checkpoint, parked events,
   * `status`, `waitUntilCaughtUp` and transactional commits stay on the primary (the `SqlClient`). Wake-ups come from
   * a LISTEN on the primary; after one the session waits for the replica to replay the primary's WAL up to where it
   * was, then reads. Delivery, order and the gap-free cursor are as on the primary, behind by the replica's lag (see
   * docs/replicas.md).
   */
  readonly reads?: "primary" | "replica" | undefined
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

const replicaOf = Effect.flatMap(Effect.serviceOption(PgReplica.Replica), (replica) =>
  Option.isSome(replica)
    ? Effect.succeed(replica.value)
    : Effect.die(
        new Error("PgSubscriptions with reads: 'replica' needs PgReplica.Replica (PgReplica.layer) in context")
      )
)

/**
 * Builds the service on the `SqlClient` in context. LISTEN needs `PgClient`; without it (or when LISTEN fails) the
 * workers poll, and say so in the log. With `reads: "replica"` it also needs `PgReplica.Replica` in context (it dies
 * without it).
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
  const replica = options.reads === "replica" ? yield* replicaOf : undefined
  const ephemerals = Ephemeral.makeRegistry(sql, t)
  const lifecycles = yield* SubscriptionLifecycle.make

  // Inside `commitWith`'s transaction a nested transaction is a savepoint: a failed handling rolls back to it. `run`
  // isolates events only when a batch's handler failed (see `Batch.tryCommitWith`).
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
        const reads = replica === undefined ? connection : yield* Connection.reserve(replica.sql)
        // The codecs that parse the rows are those of the client the reads go through.
        const readClient = replica === undefined ? sql : replica.sql
        yield* EventRow.probe(readClient)
        return Reader.batches(
          {
            sql,
            t,
            connection: reads,
            columns: EventRow.columnsOf(readClient),
            committer,
            where: filterFragment(sql, filterOf(opts), Math.max(1, opts?.partitions ?? 1), partition),
            batchSize: opts?.batchSize ?? 100,
            poll,
            wake,
            afterWake: replica === undefined ? undefined : Replica.afterWake(sql, connection, reads, poll),
            attributes,
            batchOf: (events, to) => ({
              subscription: name,
              partition,
              events,
              checkpoint: { transactionId: to.tx, position: to.pos },
              commit: committer.commit(to, events.length),
              commitWith: (effect) => committer.commitWith(to, events.length, effect),
              tryCommitWith: (effect) => committer.tryCommitWith(to, events.length, effect),
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

  const { status, waitUntilCaughtUp, parked } = Queries.make(sql, t, ephemerals)

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
export const layer: {
  (
    options: Options & { readonly reads: "replica" }
  ): Layer.Layer<Subscriptions.Subscriptions, never, SqlClient.SqlClient | PgReplica.Replica>
  (options?: Options): Layer.Layer<Subscriptions.Subscriptions, never, SqlClient.SqlClient>
} = (options?: Options) => Layer.effect(Subscriptions.Subscriptions, make(options))

/**
 * `PgReplica.ReplicaSubscriptions`: these subscriptions with `reads: "replica"`, as a service of their own beside the
 * primary's `Subscriptions` (see {@link Options.reads}; `PgProjections` keeps using `Subscriptions`). One more
 * connection per running partition, on the replica's pool.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerReplica = (
  options?: Omit<Options, "reads">
): Layer.Layer<PgReplica.ReplicaSubscriptions, never, SqlClient.SqlClient | PgReplica.Replica> =>
  Layer.effect(PgReplica.ReplicaSubscriptions, make({ ...options, reads: "replica" }))
