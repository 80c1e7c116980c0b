/**
 * The tables evently keeps in Postgres, their names, and the migrations that create them.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Migrator from "effect/sql/Migrator"
import * as SqlClient from "effect/sql/SqlClient"
import type * as SqlError from "effect/sql/SqlError"

/**
 * The names of evently's tables (and of the NOTIFY channel, which is the events table's name).
 *
 * @since 0.1.0
 * @category models
 */
export interface TableNames {
  readonly events: string
  readonly streams: string
  readonly checkpoints: string
  readonly parked: string
  readonly snapshots: string
  readonly projections: string
  readonly replayBoundaries: string
  readonly migrations: string
}

/**
 * Table names with a common prefix (default `evently_`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const tableNames = (prefix = "evently_"): TableNames => {
  if (!/^[a-z_][a-z0-9_]{0,40}$/.test(prefix)) {
    throw new Error(`Invalid table prefix ${JSON.stringify(prefix)}: use lower-case letters, digits and '_'`)
  }
  return {
    events: `${prefix}events`,
    streams: `${prefix}streams`,
    checkpoints: `${prefix}checkpoints`,
    parked: `${prefix}parked`,
    snapshots: `${prefix}snapshots`,
    projections: `${prefix}projections`,
    replayBoundaries: `${prefix}replay_boundaries`,
    migrations: `${prefix}migrations`
  }
}

/**
 * The table names the Postgres adapters use: `evently_*` unless a layer provides others.
 *
 * @since 0.1.0
 * @category services
 */
export class Tables extends Context.Reference<TableNames>("@evently/postgres/PgSchema/Tables", {
  defaultValue: () => tableNames()
}) {}

/**
 * Provides table names with another prefix to the adapters and migrations.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerTables = (prefix: string): Layer.Layer<never> => Layer.succeed(Tables, tableNames(prefix))

const eventsAndStreams = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const t = yield* Tables
  yield* sql`create table ${sql(t.streams)} (
    stream text primary key,
    category text not null,
    version bigint not null check (version > 0)
  )`
  yield* sql`create table ${sql(t.events)} (
    position bigint generated always as identity primary key,
    transaction_id xid8 not null default pg_current_xact_id(),
    stream text not null,
    category text not null,
    stream_version bigint not null check (stream_version > 0),
    event_id uuid not null,
    event_type text not null,
    schema_version integer not null default 1,
    data jsonb not null,
    metadata jsonb not null default '{}'::jsonb,
    recorded_at timestamptz not null,
    constraint ${sql(`${t.events}_stream_version_key`)} unique (stream, stream_version),
    constraint ${sql(`${t.events}_event_id_key`)} unique (event_id)
  )`
  yield* sql`create index ${sql(`${t.events}_category_position_idx`)} on ${sql(t.events)} (category, position)`
  yield* sql`create index ${sql(`${t.events}_transaction_position_idx`)} on ${sql(t.events)} (transaction_id, position)`
  yield* sql`create index ${sql(`${t.events}_category_transaction_position_idx`)}
    on ${sql(t.events)} (category, transaction_id, position)`
})

const subscriptions = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const t = yield* Tables
  yield* sql`create table ${sql(t.checkpoints)} (
    subscription text not null,
    partition integer not null check (partition >= 0),
    partitions integer not null check (partitions > 0),
    transaction_id xid8 not null,
    position bigint not null,
    system_identifier bigint not null,
    xid_epoch bigint not null,
    filter jsonb not null default '{}'::jsonb,
    updated_at timestamptz not null default now(),
    primary key (subscription, partition)
  )`
  yield* sql`create table ${sql(t.parked)} (
    id bigint generated always as identity primary key,
    subscription text not null,
    partition integer not null,
    position bigint not null,
    transaction_id xid8 not null,
    event_id uuid not null,
    stream text not null,
    event_type text not null,
    error text not null,
    parked_at timestamptz not null default now()
  )`
  yield* sql`create index ${sql(`${t.parked}_subscription_idx`)} on ${sql(t.parked)} (subscription, id)`
})

const snapshots = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const t = yield* Tables
  yield* sql`create table ${sql(t.snapshots)} (
    stream text primary key,
    version bigint not null check (version > 0),
    schema_version integer not null,
    state jsonb not null,
    created_at timestamptz not null default now()
  )`
})

/**
 * Each stream row carries the transaction part of its last event's place in the log, so that an append can give its
 * events a place after the stream's previous events even when its own transaction id is older than the one that wrote
 * them (a transaction that took its id early, then waited for the stream row's lock). Nullable, with no default: the
 * column is added without rewriting the table, and an append treats a stream row that has none as one whose events
 * all come before its own transaction id. That holds for the events written before the column existed, except for an
 * append whose transaction took its id before the last of them committed: only a transaction open across the
 * migration, or an append by code that does not set the column yet (during a rolling upgrade), can break it.
 */
const streamTransactionIds = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const t = yield* Tables
  yield* sql`alter table ${sql(t.streams)} add column last_transaction_id xid8`
})

/**
 * The projections registry: one row per build of a table projection's version (its subscription, its physical
 * tables by the name readers use, its state: building, active or retired; at most one active per projection), and
 * the replay boundaries of projections and consumers (the snapshot taken when each first started).
 */
const projections = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const t = yield* Tables
  yield* sql`create table ${sql(t.projections)} (
    subscription text primary key,
    name text not null,
    version integer not null check (version > 0),
    build integer not null check (build > 0),
    state text not null check (state in ('building', 'active', 'retired')),
    tables jsonb not null,
    started_at timestamptz not null default now(),
    activated_at timestamptz,
    retired_at timestamptz,
    constraint ${sql(`${t.projections}_build_key`)} unique (name, version, build)
  )`
  yield* sql`create unique index ${sql(`${t.projections}_active_idx`)} on ${sql(t.projections)} (name)
    where state = 'active'`
  yield* sql`create table ${sql(t.replayBoundaries)} (
    key text primary key,
    snapshot text not null,
    recorded_at timestamptz not null default now()
  )`
})

/**
 * Every migration of evently's Postgres schema, in order. Later features add entries; ids never change.
 *
 * @since 0.1.0
 * @category migrations
 */
export const migrations: Record<string, Effect.Effect<void, SqlError.SqlError, SqlClient.SqlClient>> = {
  "0001_events_and_streams": eventsAndStreams,
  "0002_subscriptions": subscriptions,
  "0003_snapshots": snapshots,
  "0004_stream_transaction_ids": streamTransactionIds,
  "0005_projections": projections
}

/**
 * Runs the pending migrations with `Migrator` from `effect/sql`. Running it twice, or from two processes at once, is
 * harmless: the migrations table is locked while they run and applied ids are skipped.
 *
 * @since 0.1.0
 * @category migrations
 */
export const migrate: Effect.Effect<
  ReadonlyArray<readonly [id: number, name: string]>,
  Migrator.MigrationError | SqlError.SqlError,
  SqlClient.SqlClient
> = Effect.gen(function* () {
  const t = yield* Tables
  return yield* Migrator.make({})({ loader: Migrator.fromRecord(migrations), table: t.migrations })
})

/**
 * A layer that runs the migrations when it is built.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMigrate: Layer.Layer<never, Migrator.MigrationError | SqlError.SqlError, SqlClient.SqlClient> =
  Layer.effectDiscard(migrate)
