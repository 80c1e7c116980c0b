/**
 * The projections registry's SQL: the builds of each projection, their creation (tables and replay boundary), the
 * switch of the readers' views, and drops. Every change runs in a transaction under the projection's advisory lock.
 */
import * as Projection from "@evently/store/Projection"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as SqlClient from "effect/sql/SqlClient"
import type * as SqlError from "effect/sql/SqlError"
import type { Build } from "../../PgProjections.ts"
import * as PgSchema from "../../PgSchema.ts"
import * as PgTransaction from "../../PgTransaction.ts"

export type { Build }

interface BuildRow {
  readonly subscription: string
  readonly name: string
  readonly version: number
  readonly build: number
  readonly state: Build["state"]
  readonly tables: unknown
  readonly startedAt: Date
  readonly activatedAt: Date | null
  readonly retiredAt: Date | null
}

const toBuild = (row: BuildRow): Build => ({
  ...row,
  tables: (typeof row.tables === "string" ? JSON.parse(row.tables) : row.tables) as Record<string, string>
})

/** The table a build writes: `<table>_v<version>`, or `<table>_v<version>b<build>` for a rebuild. */
export const physicalName = (table: string, version: number, build: number): string =>
  `${table}_v${version}${build === 1 ? "" : `b${build}`}`

/** Orders builds: by version, then by build. */
export const compare = (a: Pick<Build, "version" | "build">, b: Pick<Build, "version" | "build">): number =>
  a.version !== b.version ? a.version - b.version : a.build - b.build

const lock = (sql: SqlClient.SqlClient, name: string) =>
  sql`select pg_advisory_xact_lock(hashtext(${`evently:projection:${name}`}))`

/** Every build of a projection, oldest first. */
export const builds = (sql: SqlClient.SqlClient, t: PgSchema.TableNames, name: string) =>
  Effect.map(
    sql<BuildRow>`select subscription, name, version, build, state, tables, started_at as "startedAt",
        activated_at as "activatedAt", retired_at as "retiredAt"
      from ${sql(t.projections)} where name = ${name} order by version, build`,
    (rows) => rows.map(toBuild)
  )

/** The replay boundary recorded for `key`, recording this moment's snapshot the first time. */
export const boundary = (sql: SqlClient.SqlClient, t: PgSchema.TableNames, key: string) =>
  Effect.gen(function* () {
    yield* sql`insert into ${sql(t.replayBoundaries)} (key, snapshot) values (${key}, pg_current_snapshot()::text)
      on conflict (key) do nothing`
    const [row] = yield* sql<{ snapshot: string }>`select snapshot from ${sql(t.replayBoundaries)} where key = ${key}`
    return row!.snapshot
  })

// Why the projection's table names cannot be its views' names: another projection's view has one (both switches
// would take it over in turn, each serving its own rows under the other's name), or a relation that is not a view
// holds one (the switch would fail to drop it). Read under a lock every creation takes, so two projections that
// register at once cannot both pass.
const tablesTaken = (
  sql: SqlClient.SqlClient,
  t: PgSchema.TableNames,
  projection: Projection.Projection<unknown, unknown>
) =>
  Effect.gen(function* () {
    yield* sql`select pg_advisory_xact_lock(hashtext('evently:projection-tables'))`
    const names = Object.keys(projection.tables)
    const owned = yield* sql<{ name: string; view: string }>`
      select distinct p.name, k.view from ${sql(t.projections)} p, jsonb_object_keys(p.tables) as k(view)
      where p.name <> ${projection.name} and k.view = any(${names}::text[]) order by 1, 2`
    if (owned.length > 0) {
      return `its table '${owned[0]!.view}' is a table of projection '${owned[0]!.name}' (each view has one projection)`
    }
    const [relation] = yield* sql<{ relation: string }>`select c.relname::text as relation from pg_class c
      where c.relnamespace = current_schema()::regnamespace and c.relname = any(${names}::text[]) and c.relkind <> 'v'`
    return relation === undefined
      ? undefined
      : `a relation named '${relation.relation}' that is not a view exists: readers query a view of that name, so rename or drop it first`
  })

// Creates a build: its tables from the declaration, its registry row, and its replay boundary (this moment).
const create = (
  sql: SqlClient.SqlClient,
  t: PgSchema.TableNames,
  projection: Projection.Projection<unknown, unknown>,
  build: number
) =>
  Effect.gen(function* () {
    const taken = yield* tablesTaken(sql, t, projection)
    if (taken !== undefined) {
      return yield* new Projection.InvalidProjection({ projection: projection.name, reason: taken })
    }
    const subscription = Projection.subscriptionName(projection, build)
    // A new build starts from the beginning: nothing of a dropped namesake (a checkpoint that a process still running
    // it committed after the drop, its parked events) carries over.
    yield* sql`delete from ${sql(t.checkpoints)} where subscription = ${subscription}`
    yield* sql`delete from ${sql(t.parked)} where subscription = ${subscription}`
    const tables: Record<string, string> = {}
    for (const [table, define] of Object.entries(projection.tables)) {
      tables[table] = physicalName(table, projection.version, build)
      yield* define(sql, tables[table])
    }
    yield* sql`insert into ${sql(t.projections)} (subscription, name, version, build, state, tables)
      values (${subscription}, ${projection.name}, ${projection.version}, ${build}, 'building',
        ${JSON.stringify(tables)}::jsonb)`
    yield* sql`insert into ${sql(t.replayBoundaries)} (key, snapshot) values (${subscription}, pg_current_snapshot()::text)
      on conflict (key) do update set snapshot = excluded.snapshot, recorded_at = now()`
  })

/** Creates build 1 of the projection's version unless the version has a build already. */
export const ensureVersion = (
  sql: SqlClient.SqlClient,
  t: PgSchema.TableNames,
  projection: Projection.Projection<unknown, unknown>
): Effect.Effect<void, SqlError.SqlError | Projection.InvalidProjection> =>
  PgTransaction.withTransactionOn(
    sql,
    Effect.gen(function* () {
      yield* lock(sql, projection.name)
      const known = (yield* builds(sql, t, projection.name)).some((b) => b.version === projection.version)
      if (!known) yield* create(sql, t, projection, 1)
    })
  )

/** Creates the next build of the projection's version (a rebuild from scratch) and returns it. */
export const addBuild = (
  sql: SqlClient.SqlClient,
  t: PgSchema.TableNames,
  projection: Projection.Projection<unknown, unknown>
): Effect.Effect<Build, SqlError.SqlError | Projection.InvalidProjection> =>
  PgTransaction.withTransactionOn(
    sql,
    Effect.gen(function* () {
      yield* lock(sql, projection.name)
      const last = (yield* builds(sql, t, projection.name))
        .filter((b) => b.version === projection.version)
        .reduce((max, b) => Math.max(max, b.build), 0)
      yield* create(sql, t, projection, last + 1)
      const made = yield* builds(sql, t, projection.name)
      return made.find((b) => b.version === projection.version && b.build === last + 1)!
    })
  )

/** What a switch attempt found. */
export type SwitchOutcome = "Switched" | "Behind" | "Superseded" | "Settled"

// Whether `build` has not yet handled some event of its filter that it must have before it takes over: with an
// active build, every event up to the active build's furthest checkpoint (so that it has all the active one served);
// with none, every event committed and readable now. Each event is compared with the build's checkpoint of the
// event's partition (PgSubscriptions' `mod(abs(hashtext(stream)), partitions)`); every partition must have one.
const behind = (
  sql: SqlClient.SqlClient,
  t: PgSchema.TableNames,
  build: Build,
  active: Build | undefined,
  filter: { readonly categories: ReadonlyArray<string>; readonly eventTypes: ReadonlyArray<string> }
) =>
  Effect.gen(function* () {
    const [parts] = yield* sql<{ present: number; partitions: number | null }>`
      select count(*)::int as present, max(partitions)::int as partitions
      from ${sql(t.checkpoints)} where subscription = ${build.subscription}`
    if (parts!.present === 0 || parts!.present !== parts!.partitions) return true
    const until =
      active === undefined
        ? sql`e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())`
        : sql`(e.transaction_id, e.position) <= (
            select transaction_id, position from ${sql(t.checkpoints)} where subscription = ${active.subscription}
            order by transaction_id desc, position desc limit 1)`
    const [row] = yield* sql<{ behind: boolean }>`
      select exists (
        select 1 from ${sql(t.events)} e, ${sql(t.checkpoints)} c
        where c.subscription = ${build.subscription}
          and (c.partitions <= 1 or mod(abs(hashtext(e.stream)::bigint), c.partitions::bigint) = c.partition::bigint)
          and e.category = any(${filter.categories}::text[]) and e.event_type = any(${filter.eventTypes}::text[])
          and (e.transaction_id, e.position) > (c.transaction_id, c.position)
          and ${until}
      ) as behind`
    return row!.behind
  })

// The build's checkpoints as one string: it changes when any partition commits.
const progressOf = (sql: SqlClient.SqlClient, t: PgSchema.TableNames, build: Build) =>
  Effect.map(
    sql<{ progress: string | null }>`select string_agg(transaction_id::text || ':' || position, ',' order by partition)
      as progress from ${sql(t.checkpoints)} where subscription = ${build.subscription}`,
    ([row]) => row?.progress ?? ""
  )

// Points each reader's view at the build's table; drops the views of tables the build no longer has.
const pointViews = (sql: SqlClient.SqlClient, build: Build, previous: Build | undefined) =>
  Effect.gen(function* () {
    for (const table of Object.keys(previous?.tables ?? {})) {
      if (!(table in build.tables)) yield* sql`drop view if exists ${sql(table)}`
    }
    for (const [table, physical] of Object.entries(build.tables)) {
      yield* sql`drop view if exists ${sql(table)}`
      yield* sql`create view ${sql(table)} as select * from ${sql(physical)}`
    }
  })

/**
 * Makes `subscription`'s build the active one if it may take over (nothing is active, or an older build is) and has
 * handled everything the active one has. The active build's checkpoints are locked first (its next commit waits until
 * the switch is done), so that what it served is a subset of what the new build serves; then, for up to `wait`
 * milliseconds, the new build is given time to reach that point (on a server; PGlite runs one transaction at a time,
 * so there the attempt ends at once and is tried again later).
 */
export const trySwitch = (
  sql: SqlClient.SqlClient,
  t: PgSchema.TableNames,
  projection: Projection.Projection<unknown, unknown>,
  subscription: string,
  wait: number
): Effect.Effect<SwitchOutcome, SqlError.SqlError> =>
  PgTransaction.withTransactionOn(
    sql,
    Effect.gen(function* () {
      yield* lock(sql, projection.name)
      const all = yield* builds(sql, t, projection.name)
      const build = all.find((b) => b.subscription === subscription)
      if (build === undefined || build.state !== "building") return "Settled" as const
      const active = all.find((b) => b.state === "active")
      if (active !== undefined && compare(active, build) > 0) {
        yield* sql`update ${sql(t.projections)} set state = 'retired', retired_at = now()
          where subscription = ${subscription}`
        return "Superseded" as const
      }
      if (active !== undefined) {
        yield* sql`select 1 from ${sql(t.checkpoints)} where subscription = ${active.subscription} for update`
      }
      const filter = Projection.filterOf(projection)
      const deadline = (yield* Clock.currentTimeMillis) + wait
      let seen = yield* progressOf(sql, t, build)
      let still = 0
      while (yield* behind(sql, t, build, active, filter)) {
        if ((yield* Clock.currentTimeMillis) >= deadline) return "Behind" as const
        yield* Effect.sleep("5 millis")
        const now = yield* progressOf(sql, t, build)
        // No commit of the new build for 100 ms: it cannot commit while this transaction runs (PGlite's one
        // session), or it is slow; either way, let go and try again later rather than hold the active build back.
        still = now === seen ? still + 1 : 0
        seen = now
        if (still >= 20) return "Behind" as const
      }
      yield* pointViews(sql, build, active)
      yield* sql`update ${sql(t.projections)} set state = 'retired', retired_at = now()
        where name = ${projection.name} and subscription <> ${subscription}
          and (state = 'active' or (state = 'building' and (version, build) < (${build.version}, ${build.build})))`
      yield* sql`update ${sql(t.projections)} set state = 'active', activated_at = now()
        where subscription = ${subscription}`
      return "Switched" as const
    })
  )

/** What a drop found. */
export type DropOutcome =
  | { readonly _tag: "Dropped"; readonly builds: ReadonlyArray<Build> }
  | { readonly _tag: "Unknown" }
  | { readonly _tag: "Active"; readonly build: Build }

/**
 * Drops the builds that `select` picks (tables, checkpoints, parked events, boundaries, registry rows), unless one is
 * active.
 */
export const drop = (
  sql: SqlClient.SqlClient,
  t: PgSchema.TableNames,
  name: string,
  select: (build: Build) => boolean
): Effect.Effect<DropOutcome, SqlError.SqlError> =>
  PgTransaction.withTransactionOn(
    sql,
    Effect.gen(function* () {
      yield* lock(sql, name)
      const chosen = (yield* builds(sql, t, name)).filter(select)
      if (chosen.length === 0) return { _tag: "Unknown" } as const
      const active = chosen.find((b) => b.state === "active")
      if (active !== undefined) return { _tag: "Active", build: active } as const
      for (const build of chosen) {
        for (const physical of Object.values(build.tables)) yield* sql`drop table if exists ${sql(physical)}`
      }
      const subscriptions = chosen.map((b) => b.subscription)
      yield* sql`delete from ${sql(t.checkpoints)} where subscription = any(${subscriptions}::text[])`
      yield* sql`delete from ${sql(t.parked)} where subscription = any(${subscriptions}::text[])`
      yield* sql`delete from ${sql(t.replayBoundaries)} where key = any(${subscriptions}::text[])`
      yield* sql`delete from ${sql(t.projections)} where subscription = any(${subscriptions}::text[])`
      return { _tag: "Dropped", builds: chosen } as const
    })
  )
