/**
 * The Postgres adapter of `Subscriptions`: a gap-free `(transaction_id, position)` cursor on the events table, one
 * checkpoint row per `(subscription, partition)`, one active worker per partition across processes (a session
 * advisory lock on a held connection), LISTEN/NOTIFY wake-ups with a poll as the safety net, and a refusal to resume
 * from a checkpoint written by another cluster.
 *
 * @since 0.1.0
 */
import { PgClient } from "@effect/sql-pg"
import type * as EventStore from "@evently/store/EventStore"
import * as Subscriptions from "@evently/store/Subscriptions"
import * as KeyedLock from "@evently/store/KeyedLock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as Semaphore from "effect/Semaphore"
import * as SqlClient from "effect/sql/SqlClient"
import * as SqlError from "effect/sql/SqlError"
import type * as Statement from "effect/sql/Statement"
import * as Stream from "effect/Stream"
import * as EventRow from "./internal/eventRow.ts"
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
export const eventsCommitted = Metric.counter("evently_subscription_events_committed", {
  description: "Events whose checkpoint a subscription committed"
})

/**
 * The position of a subscription partition's checkpoint.
 *
 * @since 0.1.0
 * @category metrics
 */
export const checkpointPosition = Metric.gauge("evently_subscription_checkpoint_position", {
  description: "The position of the subscription partition's checkpoint"
})

/**
 * Matching events a subscription partition has not handled yet (updated by `status` and when a read comes back
 * empty).
 *
 * @since 0.1.0
 * @category metrics
 */
export const lagEvents = Metric.gauge("evently_subscription_lag_events", {
  description: "Matching events not yet handled by the subscription partition"
})

/**
 * The age in seconds of the oldest event a subscription partition has not handled (updated by `status`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const lagSeconds = Metric.gauge("evently_subscription_lag_seconds", {
  description: "Age of the oldest unhandled event of the subscription partition"
})

interface Cursor {
  readonly tx: bigint
  readonly pos: bigint
}

interface StoredFilter {
  readonly categories?: ReadonlyArray<string> | undefined
  readonly eventTypes?: ReadonlyArray<string> | undefined
}

const storage =
  (operation: string) =>
  (cause: unknown): Subscriptions.SubscriptionStorageError =>
    new Subscriptions.SubscriptionStorageError({ operation, cause })

const isAfter = (a: Cursor, b: Cursor) => a.tx > b.tx || (a.tx === b.tx && a.pos > b.pos)

const metricAttributes = (subscription: string, partition: number) => ({
  subscription,
  partition: String(partition)
})

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

const filterOf = (opts: Subscriptions.SubscribeOptions | undefined): StoredFilter => ({
  ...(opts?.categories === undefined ? {} : { categories: opts.categories }),
  ...(opts?.eventTypes === undefined ? {} : { eventTypes: opts.eventTypes })
})

// The advisory lock of a partition is (hashtext('evently:' || name), partition). Two names whose hashes collide
// only exclude each other's workers: never a correctness problem, since commits compare-and-set the checkpoint.
const lockKey = (name: string) => `evently:${name}`

const describeError = (error: unknown) => (error instanceof Error ? error.message : Subscriptions.describeError(error))

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
  const cursor = yield* resolveStart(sql, t, name, start)
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

// Where a new checkpoint starts. A transaction id given with `After` must be one this cluster has reached: a later
// one would be trusted now and refused as "from the future" on the next start.
const resolveStart = Effect.fnUntraced(function* (
  sql: SqlClient.SqlClient,
  t: PgSchema.TableNames,
  name: string,
  start: Subscriptions.Start
) {
  switch (start._tag) {
    case "Beginning":
      return { tx: 0n, pos: 0n }
    case "End": {
      const [row] = yield* sql<{ tx: string }>`select pg_snapshot_xmin(pg_current_snapshot())::text as tx`.pipe(
        Effect.mapError(storage("resolve start"))
      )
      return { tx: BigInt(row!.tx), pos: 0n }
    }
    case "After": {
      if (start.transactionId !== undefined) {
        const [row] = yield* sql<{ xmax: string }>`select pg_snapshot_xmax(pg_current_snapshot())::text as xmax`.pipe(
          Effect.mapError(storage("resolve start"))
        )
        if (start.transactionId > BigInt(row!.xmax)) {
          return yield* new Subscriptions.InvalidSubscription({
            subscription: name,
            reason: `start After(${start.position}, ${start.transactionId}) names a transaction id this cluster has not reached (its next is ${row!.xmax})`
          })
        }
        return { tx: start.transactionId, pos: start.position }
      }
      const [row] = yield* sql<{ tx: string }>`select coalesce(
          (select transaction_id::text from ${sql(t.events)} where position = ${start.position}), '0') as tx`.pipe(
        Effect.mapError(storage("resolve start"))
      )
      return { tx: BigInt(row!.tx), pos: start.position }
    }
  }
})

/** The connection a worker's session holds: its statements run one at a time, and fail as storage faults. */
interface SessionConnection {
  readonly query: <A>(
    operation: string,
    statement: Statement.Statement<A>
  ) => Effect.Effect<ReadonlyArray<A>, Subscriptions.SubscriptionStorageError>
}

const reserveConnection = Effect.fnUntraced(function* (sql: SqlClient.SqlClient) {
  const connection = yield* sql.reserve.pipe(Effect.mapError(storage("connect")))
  const mutex = yield* Semaphore.make(1)
  return {
    query: <A>(operation: string, statement: Statement.Statement<A>) => {
      const [text, params] = statement.compile()
      const run: Effect.Effect<ReadonlyArray<unknown>, SqlError.SqlError> = connection.execute(text, params, undefined)
      return mutex.withPermit(run).pipe(Effect.mapError(storage(operation))) as Effect.Effect<
        ReadonlyArray<A>,
        Subscriptions.SubscriptionStorageError
      >
    }
  } satisfies SessionConnection
})

/** Where a partition's checkpoint lives, and how a commit moves it. */
interface CheckpointStore {
  readonly initial: Cursor
  /** Moves the checkpoint from `from` to `to` outside a transaction; fails with `LeaseLost` when it had moved. */
  readonly advance: (from: Cursor, to: Cursor) => Effect.Effect<void, Subscriptions.SubscriptionError>
  /** The same, inside the caller's transaction. */
  readonly advanceInTransaction: (from: Cursor, to: Cursor) => Effect.Effect<void, Subscriptions.SubscriptionError>
  readonly committed: (to: Cursor) => void
  readonly park: (
    event: EventStore.RecordedEvent,
    error: unknown
  ) => Effect.Effect<void, Subscriptions.SubscriptionStorageError>
}

/** A session's commits: serialized, and refused once any of them failed or the session ended (see `make`). */
const makeCommitter = Effect.fnUntraced(function* (
  sql: SqlClient.SqlClient,
  checkpoints: CheckpointStore,
  attributes: ReturnType<typeof metricAttributes>
) {
  let committed = checkpoints.initial
  let poisoned: Subscriptions.SubscriptionError | undefined
  // Why the session's reader stopped, if it failed: batches it had read before are still handed out, and their
  // commits fail with this error rather than a bare "ended", so that a reason that ends `run` (an unreadable row)
  // reaches it instead of a restart that would meet the same row again.
  let readerFailure: Subscriptions.SubscriptionError | undefined
  const permit = yield* Semaphore.make(1)
  // Under the permit: the session does not end (and give up its lock) while one of its commits is still running,
  // or a new session could take the partition and handle that batch again beside it.
  yield* Effect.addFinalizer(() =>
    permit.withPermit(
      Effect.sync(() => {
        poisoned ??=
          readerFailure ??
          new Subscriptions.SubscriptionStorageError({
            operation: "commit",
            cause: new Error("the session that read this batch has ended; the batch will be delivered again")
          })
      })
    )
  )
  const poisonOnFailure = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.tapError(effect, (error) =>
      Effect.sync(() => {
        poisoned ??=
          error instanceof Subscriptions.SubscriptionStorageError || error instanceof Subscriptions.LeaseLost
            ? error
            : new Subscriptions.SubscriptionStorageError({ operation: "commit", cause: error })
      })
    )
  // Poisons inside the permit, so no commit can slip in between a failure and its poisoning.
  const guarded = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    permit.withPermit(
      poisonOnFailure(
        Effect.suspend((): Effect.Effect<A, E | Subscriptions.SubscriptionError, R> =>
          poisoned === undefined ? effect : Effect.fail(poisoned)
        )
      )
    )
  const afterCommit = (to: Cursor, count: number) =>
    Effect.gen(function* () {
      committed = to
      checkpoints.committed(to)
      yield* Metric.update(Metric.withAttributes(eventsCommitted, attributes), count)
      yield* Metric.update(Metric.withAttributes(checkpointPosition, attributes), Number(to.pos))
    })
  return {
    poisoned: () => poisoned,
    committed: () => committed,
    readerFailed: (error: Subscriptions.SubscriptionError) => {
      readerFailure = error
    },
    commit: (to: Cursor, count: number) =>
      guarded(
        Effect.gen(function* () {
          if (!isAfter(to, committed)) return
          yield* checkpoints.advance(committed, to)
          yield* afterCommit(to, count)
        })
      ),
    commitWith: <A, E, R>(to: Cursor, count: number, effect: Effect.Effect<A, E, R>) =>
      guarded(
        Effect.gen(function* () {
          const from = committed
          const result = yield* PgTransaction.withTransactionOn(
            sql,
            Effect.tap(effect, () => (isAfter(to, from) ? checkpoints.advanceInTransaction(from, to) : Effect.void))
          )
          if (isAfter(to, from)) yield* afterCommit(to, count)
          return result
        }).pipe(Effect.catchTag("SqlError", (error) => Effect.fail(storage("commit")(error))))
      ) as Effect.Effect<A, E | Subscriptions.SubscriptionError, R>,
    // Not under the permit: `run` parks from inside `commitWith`, which holds it.
    park: (event: EventStore.RecordedEvent, error: unknown) => poisonOnFailure(checkpoints.park(event, error))
  }
})

/** An ephemeral subscription running in this process: its cursor, for `status` and `waitUntilCaughtUp`. */
interface EphemeralCursor {
  readonly partition: number
  readonly partitions: number
  readonly filter: StoredFilter
  cursor: Cursor
}

/** Across the sessions of one partition of one `subscribe` call: where an ephemeral subscription has got to. */
interface EphemeralHolder {
  cursor: Cursor | undefined
}

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
  const lockRetry = Duration.fromInputUnsafe(options.lockRetryInterval ?? "500 millis")
  const reconnectDelay = Duration.fromInputUnsafe(options.reconnectDelay ?? "500 millis")
  const maxReconnectDelay = Duration.fromInputUnsafe(options.maxReconnectDelay ?? "30 seconds")
  // One worker per partition in this process, before the advisory lock that holds across processes: a session
  // advisory lock is re-entrant, so on a database with one session (the embedded PGlite) it would let a second
  // worker of this process in.
  const localLocks = KeyedLock.makeUnsafe<string>()
  const ephemerals = new Map<string, Set<EphemeralCursor>>()
  const ephemeralParked: Array<Subscriptions.ParkedEvent> = []

  // Standby: try the partition's lock until it is ours (the holder's death releases it).
  const takeLease = Effect.fnUntraced(function* (connection: SessionConnection, name: string, partition: number) {
    yield* localLocks.takeScoped(`${partition}:${name}`)
    yield* connection
      .query<{ locked: boolean }>(
        "lock",
        sql`select pg_try_advisory_lock(hashtext(${lockKey(name)}), ${partition}::int) as locked`
      )
      .pipe(
        Effect.map((rows) => rows[0]!.locked),
        Effect.repeat({ until: (locked: boolean) => locked, schedule: Schedule.spaced(lockRetry) })
      )
    yield* Effect.addFinalizer(() =>
      Effect.ignore(
        connection.query("unlock", sql`select pg_advisory_unlock(hashtext(${lockKey(name)}), ${partition}::int)`)
      )
    )
    yield* Effect.logDebug(`Subscription '${name}' partition ${partition}: active`)
  })

  // LISTEN before the first read, so no commit between the read and the LISTEN goes unnoticed.
  const listen = Effect.fnUntraced(function* (
    name: string,
    opts: Subscriptions.SubscribeOptions | undefined,
    poll: Duration.Duration
  ) {
    if (opts?.notify === false) return undefined
    if (Option.isNone(pg)) {
      yield* Effect.logInfo(
        `Subscription '${name}': no PgClient to LISTEN with; polling every ${Duration.format(poll)}`
      )
      return undefined
    }
    return yield* pg.value.listen(t.events).pipe(
      Effect.tapError((error) =>
        Effect.logWarning(`Subscription '${name}': LISTEN failed (${error.message}); polling instead`)
      ),
      Effect.option,
      Effect.map(Option.getOrUndefined)
    )
  })

  // A durable checkpoint: its row is created from `start` the first time and checked against this cluster every
  // time; commits compare-and-set it.
  const durableCheckpoint = Effect.fnUntraced(function* (
    connection: SessionConnection,
    name: string,
    partition: number,
    opts: Subscriptions.SubscribeOptions | undefined
  ) {
    const partitions = Math.max(1, opts?.partitions ?? 1)
    const filter = filterOf(opts)
    const initial = yield* loadCheckpoint(connection, name, partition, partitions, filter, opts)
    const casUpdate = (from: Cursor, to: Cursor) =>
      sql<{ ok: number }>`update ${sql(t.checkpoints)} set
          system_identifier = (select system_identifier from pg_control_system()),
          xid_epoch = pg_current_xact_id()::text::bigint >> 32,
          updated_at = now(),
          transaction_id = ${String(to.tx)}::xid8, position = ${to.pos}
        where subscription = ${name} and partition = ${partition}
          and transaction_id = ${String(from.tx)}::xid8 and position = ${from.pos}
        returning 1 as ok`
    const leaseLost = new Subscriptions.LeaseLost({ subscription: name, partition })
    const checkpoints: CheckpointStore = {
      initial,
      advance: (from, to) =>
        connection
          .query("commit", casUpdate(from, to))
          .pipe(Effect.flatMap((rows) => (rows.length === 0 ? Effect.fail(leaseLost) : Effect.void))),
      advanceInTransaction: (from, to) =>
        casUpdate(from, to).pipe(
          Effect.mapError(storage("commit")),
          Effect.flatMap((rows) => (rows.length === 0 ? Effect.fail(leaseLost) : Effect.void))
        ),
      committed: () => {},
      park: (event, error) =>
        sql`insert into ${sql(t.parked)}
            (subscription, partition, position, transaction_id, event_id, stream, event_type, error)
          values (${name}, ${partition}, ${event.position}, ${String(event.transactionId)}::xid8,
            ${event.eventId}::uuid, ${event.stream}, ${event.type}, ${describeError(error)})`.pipe(
          Effect.asVoid,
          Effect.mapError(storage("park"))
        )
    }
    return checkpoints
  })

  const loadCheckpoint = Effect.fnUntraced(function* (
    connection: SessionConnection,
    name: string,
    partition: number,
    partitions: number,
    filter: StoredFilter,
    opts: Subscriptions.SubscribeOptions | undefined
  ) {
    const [row] = yield* connection.query<{ tx: string; pos: bigint; system: string; current: string; xmax: string }>(
      "load checkpoint",
      sql`select transaction_id::text as tx, position as pos, system_identifier::text as system,
          (select system_identifier::text from pg_control_system()) as current,
          pg_snapshot_xmax(pg_current_snapshot())::text as xmax
        from ${sql(t.checkpoints)} where subscription = ${name} and partition = ${partition}`
    )
    if (row === undefined) {
      const start = yield* resolveStart(sql, t, name, opts?.start ?? Subscriptions.Beginning)
      yield* connection.query(
        "create checkpoint",
        sql`insert into ${sql(t.checkpoints)}
            (subscription, partition, partitions, transaction_id, position, system_identifier, xid_epoch, filter)
          values (${name}, ${partition}, ${partitions}, ${String(start.tx)}::xid8, ${start.pos},
            (select system_identifier from pg_control_system()), pg_current_xact_id()::text::bigint >> 32,
            ${JSON.stringify(filter)}::jsonb)
          on conflict (subscription, partition) do nothing`
      )
      return start
    }
    if (row.system !== row.current) {
      return yield* new Subscriptions.CheckpointFromAnotherCluster({
        subscription: name,
        partition,
        reason: `its checkpoint was written by database cluster ${row.system}, this is cluster ${row.current}`
      })
    }
    if (BigInt(row.tx) >= BigInt(row.xmax)) {
      return yield* new Subscriptions.CheckpointFromAnotherCluster({
        subscription: name,
        partition,
        reason: `its checkpoint's transaction id ${row.tx} is ahead of this cluster's next one (${row.xmax}): transaction ids went backwards`
      })
    }
    yield* connection.query(
      "update filter",
      sql`update ${sql(t.checkpoints)} set partitions = ${partitions}, filter = ${JSON.stringify(filter)}::jsonb
        where subscription = ${name} and partition = ${partition}`
    )
    return { tx: BigInt(row.tx), pos: BigInt(row.pos) }
  })

  // An ephemeral checkpoint: the cursor lives in `holder` (so a reconnect resumes from it) and in the registry that
  // `status` and `waitUntilCaughtUp` read while the session runs; parked events are kept in memory.
  const ephemeralCheckpoint = Effect.fnUntraced(function* (
    name: string,
    partition: number,
    opts: Subscriptions.SubscribeOptions | undefined,
    holder: EphemeralHolder
  ) {
    holder.cursor ??= yield* resolveStart(sql, t, name, opts?.start ?? Subscriptions.Beginning)
    const entry: EphemeralCursor = {
      partition,
      partitions: Math.max(1, opts?.partitions ?? 1),
      filter: filterOf(opts),
      cursor: holder.cursor
    }
    const running = ephemerals.get(name) ?? new Set()
    ephemerals.set(name, running.add(entry))
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        running.delete(entry)
        if (running.size === 0) ephemerals.delete(name)
      })
    )
    const checkpoints: CheckpointStore = {
      initial: holder.cursor,
      advance: () => Effect.void,
      advanceInTransaction: () => Effect.void,
      committed: (to) => {
        holder.cursor = to
        entry.cursor = to
      },
      park: (event, error) =>
        Effect.andThen(
          Effect.sync(() => {
            ephemeralParked.push(Subscriptions.parkedEvent(name, partition, event, describeError(error)))
          }),
          Effect.logWarning(`Subscription '${name}' (ephemeral) parked event ${event.eventId}: ${describeError(error)}`)
        )
    }
    return checkpoints
  })

  const session = (
    name: string,
    partition: number,
    opts: Subscriptions.SubscribeOptions | undefined,
    holder: EphemeralHolder
  ): Stream.Stream<Subscriptions.Batch, Subscriptions.SubscriptionError> =>
    Stream.unwrap(
      Effect.gen(function* () {
        const partitions = Math.max(1, opts?.partitions ?? 1)
        const batchSize = opts?.batchSize ?? 100
        const poll = Duration.fromInputUnsafe(opts?.pollInterval ?? "1 second")
        const attributes = metricAttributes(name, partition)
        // The worker's own session: its advisory lock, its reads and its plain commits all go through it, so a
        // worker whose connection dies can neither read nor commit any more, and its lock is gone with it.
        const connection = yield* reserveConnection(sql)
        if (opts?.ephemeral !== true) yield* takeLease(connection, name, partition)
        const wake = yield* listen(name, opts, poll)
        const checkpoints =
          opts?.ephemeral === true
            ? yield* ephemeralCheckpoint(name, partition, opts, holder)
            : yield* durableCheckpoint(connection, name, partition, opts)
        // What this session has committed, and why it may commit no more. A failed commit (of any batch, however
        // far the reader has read ahead of it) or the end of the session poisons it: every later commit of its
        // batches fails at once without touching the database, and the next read ends the session, so the
        // partition starts over from the checkpoint that really committed. Without this, a batch read ahead would
        // compare-and-set from the last good checkpoint and commit over the batch whose commit had failed.
        const committer = yield* makeCommitter(sql, checkpoints, attributes)
        // Inside `commitWith`'s transaction a nested transaction is a savepoint: a failed handling rolls back to it.
        const isolate = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
          PgTransaction.withTransactionOn(sql, effect).pipe(
            Effect.mapError((error) => (SqlError.isSqlError(error) ? storage("handle")(error) : error))
          ) as Effect.Effect<A, E | Subscriptions.SubscriptionStorageError, R>

        const where = filterFragment(sql, filterOf(opts), partitions, partition)
        const read = (cursor: Cursor) =>
          connection.query<EventRow.EventRow>(
            "read",
            sql`select ${EventRow.columns(sql)}
              from ${sql(t.events)} e
              where (e.transaction_id, e.position) > (${String(cursor.tx)}::xid8, ${cursor.pos})
                and e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
                ${where}
              order by e.transaction_id, e.position
              limit ${batchSize}`
          )
        const waitForWake =
          wake === undefined
            ? Effect.sleep(poll)
            : Effect.timeoutOption(Queue.take(wake), poll).pipe(
                // A burst of notifications is one wake-up.
                Effect.andThen(Queue.clear(wake)),
                Effect.mapError(storage("listen"))
              )

        const next = Effect.fnUntraced(function* (cursor: Cursor) {
          while (true) {
            const poisoned = committer.poisoned()
            if (poisoned !== undefined) return yield* poisoned
            const rows = yield* read(cursor)
            if (rows.length === 0) {
              yield* Metric.update(Metric.withAttributes(lagEvents, attributes), 0)
              yield* waitForWake
              continue
            }
            // The events before a row that cannot be read are delivered; the next read fails with that row's error.
            const { events, unreadable } = EventRow.decodeRows(rows)
            if (events.length === 0) {
              // Give the batches handed out before this row (up to 10 s) to commit, so that the checkpoint ends at
              // the last readable event before the subscription fails with the row's error.
              yield* Effect.sync(
                () => committer.poisoned() !== undefined || !isAfter(cursor, committer.committed())
              ).pipe(
                Effect.repeat({ until: (settled: boolean) => settled, schedule: Schedule.spaced("20 millis") }),
                Effect.timeoutOption("10 seconds")
              )
              return yield* unreadable!
            }
            const last = events[events.length - 1]!
            const to: Cursor = { tx: last.transactionId, pos: last.position }
            const batch: Subscriptions.Batch = {
              subscription: name,
              partition,
              events,
              checkpoint: { transactionId: to.tx, position: to.pos },
              commit: committer.commit(to, events.length),
              commitWith: (effect) => committer.commitWith(to, events.length, effect),
              isolate,
              park: committer.park
            }
            return [[batch], Option.some(to)] as const
          }
        })
        return Stream.paginate(checkpoints.initial, (cursor: Cursor) =>
          Effect.tapError(next(cursor), (error) => Effect.sync(() => committer.readerFailed(error)))
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
    const holder: EphemeralHolder = { cursor: undefined }
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
            input._tag === "LeaseLost"
              ? Effect.void
              : Effect.logWarning(`Subscription '${name}' partition ${partition}: ${input.message}; reconnecting`)
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
      : Effect.map(resolveStart(sql, t, "(ephemeral)", start), (cursor) => Subscriptions.After(cursor.pos, cursor.tx))
  const runOnPartitions = Subscriptions.makeRun(
    subscribe,
    { initialDelay: reconnectDelay, maxDelay: maxReconnectDelay },
    pinStart
  )
  const run: Subscriptions.Subscriptions["Service"]["run"] = (name, handler, opts) => {
    const tooSmall = Subscriptions.problem(name, opts) === undefined ? poolProblem(opts) : undefined
    return tooSmall !== undefined
      ? Effect.fail(new Subscriptions.InvalidSubscription({ subscription: name, reason: tooSmall }))
      : runOnPartitions(name, handler, opts)
  }

  interface CheckpointRow {
    readonly partition: number
    readonly partitions: number
    readonly tx: string
    readonly pos: bigint
    readonly filter: StoredFilter
  }
  // A name's checkpoints: its rows, else the least advanced cursor of each partition among the ephemeral
  // subscriptions of that name running in this process.
  const checkpointsOf = (name: string) =>
    sql<CheckpointRow>`select partition, partitions, transaction_id::text as tx, position as pos, filter
      from ${sql(t.checkpoints)} where subscription = ${name} order by partition`.pipe(
      Effect.map((rows): ReadonlyArray<CheckpointRow> => (rows.length > 0 ? rows : ephemeralRows(name)))
    )
  const ephemeralRows = (name: string): ReadonlyArray<CheckpointRow> => {
    const slowest = new Map<number, EphemeralCursor>()
    for (const entry of ephemerals.get(name) ?? []) {
      const known = slowest.get(entry.partition)
      if (known === undefined || isAfter(known.cursor, entry.cursor)) slowest.set(entry.partition, entry)
    }
    return [...slowest.values()]
      .sort((a, b) => a.partition - b.partition)
      .map((entry) => ({
        partition: entry.partition,
        partitions: entry.partitions,
        tx: String(entry.cursor.tx),
        pos: entry.cursor.pos,
        filter: entry.filter
      }))
  }

  const status = Effect.fn("PgSubscriptions.status")(function* (name: string) {
    yield* Subscriptions.validName(name)
    const rows = yield* checkpointsOf(name).pipe(Effect.mapError(storage("status")))
    const partitions: Array<Subscriptions.PartitionStatus> = []
    for (const row of rows) partitions.push(yield* partitionStatus(name, row).pipe(Effect.mapError(storage("status"))))
    return { subscription: name, partitions }
  })

  const partitionStatus = Effect.fnUntraced(function* (name: string, row: CheckpointRow) {
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
      ...ephemeralParked.filter((event) => event.subscription === name)
    ]
  })

  return Subscriptions.Subscriptions.of({ subscribe, run, status, waitUntilCaughtUp, parked })
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
