/**
 * A durable checkpoint: one row per `(subscription, partition)`, created from `start` the first time, checked against
 * this cluster every time (a checkpoint from another cluster, or from this one's future, is refused), and moved by
 * compare-and-set, so a worker that lost its lease cannot move it.
 */
import type * as EventStore from "@evently/store/EventStore"
import * as Subscriptions from "@evently/store/Subscriptions"
import * as Effect from "effect/Effect"
import type * as SqlClient from "effect/sql/SqlClient"
import type * as PgSchema from "../../PgSchema.ts"
import type { SessionConnection } from "./connection.ts"
import { type Cursor, describeError, filterOf, type StoredFilter, storage } from "./cursor.ts"
import * as Start from "./start.ts"

/** Where a partition's checkpoint lives, and how a commit moves it. */
export interface CheckpointStore {
  readonly initial: Cursor
  /**
   * Moves the checkpoint from `from` to `to` outside a transaction, without waiting for the WAL flush (see `durable`);
   * fails with `LeaseLost` when it had moved.
   */
  readonly advance: (from: Cursor, to: Cursor) => Effect.Effect<void, Subscriptions.SubscriptionError>
  /** The same, inside the caller's transaction. */
  readonly advanceInTransaction: (from: Cursor, to: Cursor) => Effect.Effect<void, Subscriptions.SubscriptionError>
  readonly committed: (to: Cursor) => void
  readonly park: (
    event: EventStore.RecordedEvent,
    error: unknown
  ) => Effect.Effect<void, Subscriptions.SubscriptionStorageError>
}

/** Where the checkpoints and parked events live. */
export interface Tables {
  readonly sql: SqlClient.SqlClient
  readonly t: PgSchema.TableNames
}

/**
 * The partition's checkpoint row: created from the options' `start` when missing, else validated against this
 * cluster and updated with the options' partition count and filter.
 */
export const load = Effect.fnUntraced(function* (
  { sql, t }: Tables,
  connection: SessionConnection,
  name: string,
  partition: number,
  opts: Subscriptions.SubscribeOptions | undefined
) {
  const partitions = Math.max(1, opts?.partitions ?? 1)
  const filter = filterOf(opts)
  const [row] = yield* connection.query<{ tx: string; pos: bigint; system: string; current: string; xmax: string }>(
    "load checkpoint",
    sql`select transaction_id::text as tx, position as pos, system_identifier::text as system,
        (select system_identifier::text from pg_control_system()) as current,
        pg_snapshot_xmax(pg_current_snapshot())::text as xmax
      from ${sql(t.checkpoints)} where subscription = ${name} and partition = ${partition}`
  )
  if (row === undefined) return yield* create({ sql, t }, connection, name, partition, partitions, filter, opts)
  const reason = validationProblem(row)
  if (reason !== undefined) {
    return yield* new Subscriptions.CheckpointFromAnotherCluster({ subscription: name, partition, reason })
  }
  yield* connection.query(
    "update filter",
    sql`update ${sql(t.checkpoints)} set partitions = ${partitions}, filter = ${JSON.stringify(filter)}::jsonb
      where subscription = ${name} and partition = ${partition}`
  )
  return { tx: BigInt(row.tx), pos: BigInt(row.pos) } satisfies Cursor
})

/**
 * Why a stored checkpoint cannot be resumed from in this cluster, or `undefined`: it was written by another cluster
 * (`system` is not `current`), or its transaction id is not below this cluster's next one (`xmax`).
 */
export const validationProblem = (row: {
  readonly tx: string
  readonly system: string
  readonly current: string
  readonly xmax: string
}): string | undefined =>
  row.system !== row.current
    ? `its checkpoint was written by database cluster ${row.system}, this is cluster ${row.current}`
    : BigInt(row.tx) >= BigInt(row.xmax)
      ? `its checkpoint's transaction id ${row.tx} is ahead of this cluster's next one (${row.xmax}): transaction ids went backwards`
      : undefined

const create = Effect.fnUntraced(function* (
  { sql, t }: Tables,
  connection: SessionConnection,
  name: string,
  partition: number,
  partitions: number,
  filter: StoredFilter,
  opts: Subscriptions.SubscribeOptions | undefined
) {
  const start = yield* Start.resolve(sql, t, name, opts?.start ?? Subscriptions.Beginning)
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
})

/** The durable checkpoint store of a partition, loaded (or created) through `connection`. */
export const durable = Effect.fnUntraced(function* (
  tables: Tables,
  connection: SessionConnection,
  name: string,
  partition: number,
  opts: Subscriptions.SubscribeOptions | undefined
) {
  const { sql, t } = tables
  const initial = yield* load(tables, connection, name, partition, opts)
  // `waitForFlush: false` (a plain commit, a transaction of its own): the commit does not wait for its WAL to reach
  // the disk. `set_config(..., true)` holds for this transaction only, so nothing else on the connection, nor in the
  // pool it goes back to, commits that way. The checkpoint is visible to every session as soon as the statement
  // returns; only a crash of the server itself (or a failover to a standby) can forget it, since the server's WAL
  // writer flushes it within a few hundred ms, and then the events after the older checkpoint are delivered again:
  // none is lost. Waiting for the flush took about as long as reading a page of 1,000 events. A commit with the
  // handler's writes (`advanceInTransaction`) keeps the server's setting: those writes are the app's data. A database
  // without a WAL writer (PGlite, in the app's own process: nothing would flush the commit until a later one waits,
  // and a killed process would take it along; there, too, a reserved connection's statement joins a transaction the
  // calling fiber has open) always waits.
  const [writer] = yield* connection.query(
    "check the WAL writer",
    sql<{
      flushes: boolean
    }>`select exists (select 1 from pg_stat_activity where backend_type = 'walwriter') as flushes`
  )
  const flushedByServer = writer?.flushes === true
  const casUpdate = (from: Cursor, to: Cursor, waitForFlush: boolean) =>
    sql<{ ok: number }>`update ${sql(t.checkpoints)} set
        system_identifier = (select system_identifier from pg_control_system()),
        xid_epoch = pg_current_xact_id()::text::bigint >> 32,
        updated_at = now(),
        transaction_id = ${String(to.tx)}::xid8, position = ${to.pos}
      ${waitForFlush ? sql`` : sql`from (select set_config('synchronous_commit', 'off', true)) as commit_setting`}
      where subscription = ${name} and partition = ${partition}
        and transaction_id = ${String(from.tx)}::xid8 and position = ${from.pos}
      returning 1 as ok`
  const leaseLost = new Subscriptions.LeaseLost({ subscription: name, partition })
  const failIfMoved = (rows: ReadonlyArray<unknown>) => (rows.length === 0 ? Effect.fail(leaseLost) : Effect.void)
  return {
    initial,
    advance: (from, to) =>
      connection.query("commit", casUpdate(from, to, !flushedByServer)).pipe(Effect.flatMap(failIfMoved)),
    advanceInTransaction: (from, to) =>
      casUpdate(from, to, true).pipe(Effect.mapError(storage("commit")), Effect.flatMap(failIfMoved)),
    committed: () => {},
    park: (event, error) =>
      sql`insert into ${sql(t.parked)}
          (subscription, partition, position, transaction_id, event_id, stream, event_type, error)
        values (${name}, ${partition}, ${event.position}, ${String(event.transactionId)}::xid8,
          ${event.eventId}::uuid, ${event.stream}, ${event.type}, ${describeError(error)})`.pipe(
        Effect.asVoid,
        Effect.mapError(storage("park"))
      )
  } satisfies CheckpointStore
})
