/**
 * Table projections on Postgres (and PGlite) with versions and blue/green rebuilds. Each build of a projection's
 * version writes its own physical tables (`<table>_v<version>`, `<table>_v<version>b<build>` for a rebuild), created
 * from the projection's declared tables, through a transactional subscription (`projection:<name>:v<version>`): its
 * writes commit with its checkpoint. Readers query a view named `<table>`, which points at the active build. A build
 * that has caught up takes over when it is newer than the active one: in one transaction, under the projection's
 * lock, with the active build's commits held back until the switch is done, the views are dropped and re-created on
 * its tables. The first build to catch up becomes active; an older one never takes over again; a retired build's
 * tables stay until `drop`.
 *
 * @since 0.1.0
 */
import * as Projection from "@evently/store/Projection"
import * as ReplayBoundary from "@evently/store/ReplayBoundary"
import type * as SubscriptionLifecycle from "@evently/store/SubscriptionLifecycle"
import { Faults, Subscriptions } from "@evently/store"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberMap from "effect/FiberMap"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as SqlClient from "effect/sql/SqlClient"
import * as PgSchema from "./PgSchema.ts"
import * as Registry from "./internal/projections/registry.ts"

/**
 * One build of a projection's version: its subscription, its state (`building`, `active`, `retired`), its physical
 * table by the name readers use, and when it started, took over and was retired.
 *
 * @since 0.1.0
 * @category models
 */
export interface Build {
  readonly subscription: string
  readonly name: string
  readonly version: number
  readonly build: number
  readonly state: "building" | "active" | "retired"
  /** Physical table by the name readers use. */
  readonly tables: Readonly<Record<string, string>>
  readonly startedAt: Date
  readonly activatedAt: Date | null
  readonly retiredAt: Date | null
}

/**
 * An operation named a projection (or a version or build of it) that the registry does not have.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnknownProjection extends Schema.TaggedError<UnknownProjection>("@evently/postgres/UnknownProjection")(
  "UnknownProjection",
  { projection: Schema.String, detail: Schema.String }
) {
  override get message(): string {
    return `Projection '${this.projection}' ${this.detail}`
  }
}

/**
 * `drop` refused: the build is the one readers are served from.
 *
 * @since 0.1.0
 * @category errors
 */
export class ActiveBuild extends Schema.TaggedError<ActiveBuild>("@evently/postgres/ActiveBuild")("ActiveBuild", {
  projection: Schema.String,
  version: Schema.Int,
  build: Schema.Int
}) {
  override get message(): string {
    return `Projection '${this.projection}' version ${this.version} (build ${this.build}) is active: readers are served from it, so it cannot be dropped; drop it once a newer build has taken over`
  }
}

/**
 * Options of `run`: those of a subscription's run but the filter, `transactional` (always) and `ephemeral` (a table
 * projection keeps its checkpoint), how often the registry is read for new builds (`registryPollInterval`, default
 * 5 seconds) and how long a switch may hold the active build's commits back while the new build reaches it
 * (`switchWait`, default 1 second).
 *
 * @since 0.1.0
 * @category models
 */
export interface RunOptions extends Omit<Projection.RunOptions, "ephemeral"> {
  readonly registryPollInterval?: Duration.Input | undefined
  readonly switchWait?: Duration.Input | undefined
}

const storage =
  (operation: string) =>
  (cause: unknown): Subscriptions.SubscriptionStorageError =>
    new Subscriptions.SubscriptionStorageError({ operation: `projection ${operation}`, cause })

const tableProjection = (projection: Projection.Projection<unknown, unknown>) =>
  Effect.andThen(
    Projection.validate(projection),
    Object.keys(projection.tables).length === 0
      ? Effect.fail(
          new Projection.InvalidProjection({
            projection: projection.name,
            reason: "a table projection declares at least one table (run a consumer with Projection.run)"
          })
        )
      : Effect.void
  )

// A duration option: finite, and at least `least` milliseconds.
const durationProblem = (label: string, input: Duration.Input | undefined, least: number): string | undefined => {
  if (input === undefined) return undefined
  const millis = Option.map(Duration.fromInput(input), Duration.toMillis)
  return Option.isSome(millis) && Number.isFinite(millis.value) && millis.value >= least
    ? undefined
    : `${label} must be a finite duration of at least ${least} milliseconds, not ${String(input)}`
}

// The declaration and every option, before any I/O: a bad option fails typed instead of dying after the tables of
// the version were created.
const checked = (projection: Projection.Projection<unknown, unknown>, options: RebuildOptions | undefined) =>
  Effect.gen(function* () {
    yield* tableProjection(projection)
    const reason =
      durationProblem("registryPollInterval", options?.registryPollInterval, 1) ??
      durationProblem("switchWait", options?.switchWait, 0) ??
      durationProblem("progressInterval", options?.progressInterval, 1)
    if (reason !== undefined) return yield* new Projection.InvalidProjection({ projection: projection.name, reason })
    const {
      registryPollInterval: _p,
      switchWait: _s,
      onProgress: _o,
      progressInterval: _i,
      ...runOptions
    } = options ?? {}
    const subscription = Projection.subscriptionName(projection)
    const problem = Subscriptions.problem(subscription, { ...runOptions, ...Projection.filterOf(projection) })
    if (problem !== undefined) return yield* new Subscriptions.InvalidSubscription({ subscription, reason: problem })
  })

const boundaryOf = (snapshot: string): ReplayBoundary.ReplayBoundary =>
  Option.getOrElse(ReplayBoundary.fromSnapshotText(snapshot), () => ({ _tag: "Position", position: 0n }) as const)

// The builds a process of `version` runs: the newest build of its version, and the active build when it is of its
// version too (it keeps serving and updating while a rebuild of the same version catches up).
const wanted = (all: ReadonlyArray<Build>, version: number): ReadonlyArray<Build> => {
  const mine = all.filter((b) => b.version === version)
  const newest = mine[mine.length - 1]
  const active = mine.find((b) => b.state === "active")
  return [...(active !== undefined && active !== newest ? [active] : []), ...(newest === undefined ? [] : [newest])]
}

// Retries what a retry can fix (a lost connection, a serialization failure), forever, with a capped backoff.
const retryFaults = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.retry(effect, {
    while: (error) => Faults.isTransient(error),
    schedule: Schedule.min([Schedule.exponential("100 millis"), Schedule.spaced("5 seconds")])
  })

const runBuild = <E, R>(projection: Projection.Projection<E, R>, build: Build, options: RunOptions | undefined) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const t = yield* PgSchema.Tables
    const subscriptions = yield* Subscriptions.Subscriptions
    const snapshot = yield* retryFaults(Registry.boundary(sql, t, build.subscription)).pipe(
      Effect.mapError(storage("boundary"))
    )
    const { registryPollInterval: _poll, switchWait, ...runOptions } = options ?? {}
    const consume = subscriptions
      .run(
        build.subscription,
        Projection.handler(projection, { boundary: boundaryOf(snapshot), tables: build.tables }),
        { ...runOptions, ...Projection.filterOf(projection), transactional: true }
      )
      .pipe(Effect.catchTag("HandlerFailed", (error) => droppedOrFail(projection, build, error)))
    const wait = Duration.toMillis(Duration.fromInputUnsafe(switchWait ?? "1 second"))
    const switcher = build.state === "building" ? switchWhenCaughtUp(projection, build, wait) : Effect.void
    return yield* Effect.all([consume, Effect.andThen(switcher, Effect.never)], {
      concurrency: "unbounded",
      discard: true
    }).pipe(Effect.andThen(Effect.never))
  })

// A build's handler failed: when the build was dropped under it (a retired build dropped right after a switch, before
// this process's next registry read), its tables are gone and it is not this process's to serve any more; it stops
// here quietly, and the next reconcile lets it go, rather than ending the run of the builds still served.
const droppedOrFail = (
  projection: Projection.Projection<unknown, unknown>,
  build: Build,
  error: Subscriptions.HandlerFailed
) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const t = yield* PgSchema.Tables
    const all = yield* retryFaults(Registry.builds(sql, t, projection.name)).pipe(Effect.mapError(storage("read")))
    if (all.some((b) => b.subscription === build.subscription)) return yield* error
    yield* Effect.logInfo(`Projection '${projection.name}': ${build.subscription} was dropped; this process stops it`)
    return yield* Effect.never
  })

// Waits until the build has caught up, then tries to switch the readers to it, until it is active or superseded.
const switchWhenCaughtUp = (projection: Projection.Projection<unknown, unknown>, build: Build, wait: number) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const t = yield* PgSchema.Tables
    const subscriptions = yield* Subscriptions.Subscriptions
    const started = yield* Clock.currentTimeMillis
    while (true) {
      const caughtUp = yield* subscriptions.waitUntilCaughtUp(build.subscription, { timeout: "10 seconds" }).pipe(
        Effect.as(true),
        Effect.catchTag("CaughtUpTimeout", () => Effect.succeed(false))
      )
      if (!caughtUp) continue
      const outcome = yield* retryFaults(Registry.trySwitch(sql, t, projection, build.subscription, wait))
      if (outcome === "Behind") {
        yield* Effect.sleep("20 millis")
        continue
      }
      if (outcome === "Switched") {
        const seconds = ((yield* Clock.currentTimeMillis) - started) / 1000
        yield* Effect.logInfo(
          `Projection '${projection.name}' version ${build.version}${build.build === 1 ? "" : ` build ${build.build}`} took over: readers now query its tables (${seconds.toFixed(1)} s after it started here)`
        )
      }
      return outcome
    }
  }).pipe(Effect.mapError(storage("switch")))

/**
 * Runs a table projection's version until interrupted or stopped: creates its tables and registry entry the first
 * time (build 1), then runs its newest build, and the active build too when that is an older build of the same
 * version (during a `rebuild`); a building build takes over once caught up. New builds are picked up from the
 * registry every `registryPollInterval`. Run it in every process that serves the projection; with `partitions` and
 * `partition` the builds run as a consumer group across processes, and a switch waits for every partition.
 *
 * @since 0.1.0
 * @category running
 */
export const run = <E, R>(
  projection: Projection.Projection<E, R>,
  options?: RunOptions
): Effect.Effect<
  never,
  Projection.InvalidProjection | UnknownProjection | Subscriptions.SubscriptionError | Subscriptions.HandlerFailed,
  R | SqlClient.SqlClient | Subscriptions.Subscriptions
> =>
  Effect.gen(function* () {
    yield* checked(projection, options)
    const sql = yield* SqlClient.SqlClient
    const t = yield* PgSchema.Tables
    yield* retryFaults(Registry.ensureVersion(sql, t, projection)).pipe(
      Effect.catchTag("SqlError", (error) => Effect.fail(storage("register")(error)))
    )
    const running = yield* FiberMap.make<
      string,
      never,
      Projection.InvalidProjection | Subscriptions.SubscriptionError | Subscriptions.HandlerFailed
    >()
    const reconcile = Effect.gen(function* () {
      const all = yield* retryFaults(Registry.builds(sql, t, projection.name)).pipe(Effect.mapError(storage("read")))
      const builds = wanted(all, projection.version)
      if (builds.length === 0) {
        return yield* new UnknownProjection({
          projection: projection.name,
          detail: `has no version ${projection.version} any more: it was dropped while this process ran it`
        })
      }
      for (const build of builds) {
        yield* FiberMap.run(running, build.subscription, runBuild(projection, build, options), { onlyIfMissing: true })
      }
      const keep = new Set(builds.map((b) => b.subscription))
      for (const [key] of running) if (!keep.has(key)) yield* FiberMap.remove(running, key)
    })
    const poll = Duration.fromInputUnsafe(options?.registryPollInterval ?? "5 seconds")
    const watch = Effect.repeat(reconcile, Schedule.spaced(poll)).pipe(Effect.andThen(Effect.never))
    return yield* Effect.raceFirst(watch, Effect.andThen(FiberMap.join(running), Effect.never))
  }).pipe(Effect.scoped, Effect.withSpan("PgProjections.run", { attributes: { projection: projection.name } }))

/**
 * What a rebuild has done so far: events handled and to handle (those of its filter committed until now), and the
 * rate over the last interval.
 *
 * @since 0.1.0
 * @category models
 */
export interface Progress {
  readonly projection: string
  readonly version: number
  readonly build: number
  readonly eventsDone: number
  readonly eventsTotal: number
  readonly eventsPerSecond: number
}

/**
 * Options of `rebuild`: those of `run`, and `onProgress`, called every `progressInterval` (default 2 seconds) while
 * the new build catches up.
 *
 * @since 0.1.0
 * @category models
 */
export interface RebuildOptions extends RunOptions {
  readonly onProgress?: ((progress: Progress) => Effect.Effect<void>) | undefined
  readonly progressInterval?: Duration.Input | undefined
}

const matching = (projection: Projection.Projection<unknown, unknown>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const t = yield* PgSchema.Tables
    const [row] = yield* sql<{ count: string }>`select count(*)::text as count from ${sql(t.events)}
      where category = any(${projection.categories}::text[]) and event_type = any(${projection.eventTypes}::text[])`
    return Number(row!.count)
  })

const reportProgress = (projection: Projection.Projection<unknown, unknown>, build: Build, options: RebuildOptions) =>
  Effect.gen(function* () {
    const subscriptions = yield* Subscriptions.Subscriptions
    const onProgress = options.onProgress
    if (onProgress === undefined) return yield* Effect.never
    const interval = Duration.fromInputUnsafe(options.progressInterval ?? "2 seconds")
    let previous: { readonly done: number; readonly at: number } | undefined
    const tick = Effect.gen(function* () {
      const total = yield* matching(projection)
      const status = yield* subscriptions.status(build.subscription)
      const lag = status.partitions.reduce((sum, p) => sum + p.lagEvents, 0)
      const done = status.partitions.length === 0 ? 0 : Math.max(0, total - lag)
      const at = yield* Clock.currentTimeMillis
      const rate =
        previous === undefined || at === previous.at ? 0 : ((done - previous.done) * 1000) / (at - previous.at)
      previous = { done, at }
      yield* onProgress({
        projection: projection.name,
        version: build.version,
        build: build.build,
        eventsDone: done,
        eventsTotal: total,
        eventsPerSecond: Math.round(rate)
      })
    }).pipe(Effect.catch((error) => Effect.logWarning(`Rebuild progress of '${projection.name}': ${error.message}`)))
    return yield* Effect.repeat(tick, Schedule.spaced(interval)).pipe(Effect.andThen(Effect.never))
  })

/**
 * Rebuilds the projection's version from scratch, blue/green: creates a new build (fresh tables, a new subscription
 * from the beginning, a replay boundary at this moment, so every event already committed is `replaying`), runs it
 * in this process (the processes that `run` the version pick it up too, within their `registryPollInterval`) while
 * the active build keeps serving, and returns the new build once it has taken over. Run with a version higher than
 * the active one, it deploys that version. Progress goes to `onProgress`. Give it the same `partitions` as the
 * processes that run the version: they share the new build's subscription.
 *
 * @since 0.1.0
 * @category running
 */
export const rebuild = <E, R>(
  projection: Projection.Projection<E, R>,
  options: RebuildOptions = {}
): Effect.Effect<
  Build,
  Projection.InvalidProjection | UnknownProjection | Subscriptions.SubscriptionError | Subscriptions.HandlerFailed,
  R | SqlClient.SqlClient | Subscriptions.Subscriptions
> =>
  Effect.gen(function* () {
    yield* checked(projection, options)
    const sql = yield* SqlClient.SqlClient
    const t = yield* PgSchema.Tables
    const build = yield* retryFaults(Registry.addBuild(sql, t, projection)).pipe(
      Effect.catchTag("SqlError", (error) => Effect.fail(storage("rebuild")(error)))
    )
    yield* Effect.logInfo(
      `Projection '${projection.name}' version ${build.version}: rebuilding as build ${build.build}`
    )
    const settled = Effect.gen(function* () {
      while (true) {
        const all = yield* retryFaults(Registry.builds(sql, t, projection.name)).pipe(Effect.mapError(storage("read")))
        const now = all.find((b) => b.subscription === build.subscription)
        if (now === undefined) {
          return yield* new UnknownProjection({ projection: projection.name, detail: "was dropped during its rebuild" })
        }
        if (now.state !== "building") return now
        yield* Effect.sleep("100 millis")
      }
    })
    return yield* Effect.raceFirst(
      settled,
      Effect.andThen(
        Effect.all([runBuild(projection, build, options), reportProgress(projection, build, options)], {
          concurrency: "unbounded",
          discard: true
        }),
        Effect.never
      )
    )
  }).pipe(Effect.withSpan("PgProjections.rebuild", { attributes: { projection: projection.name } }))

/**
 * Every build of a projection in the registry, oldest first.
 *
 * @since 0.1.0
 * @category status
 */
export const builds = (
  name: string
): Effect.Effect<ReadonlyArray<Build>, Subscriptions.SubscriptionStorageError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const t = yield* PgSchema.Tables
    return yield* Registry.builds(sql, t, name).pipe(Effect.mapError(storage("read")))
  })

/**
 * A projection's builds, each with its subscription's status (checkpoints and lag; see `Subscriptions.status`).
 *
 * @since 0.1.0
 * @category status
 */
export const status = (
  name: string
): Effect.Effect<
  ReadonlyArray<{ readonly build: Build; readonly status: Subscriptions.Status }>,
  UnknownProjection | Subscriptions.SubscriptionError,
  SqlClient.SqlClient | Subscriptions.Subscriptions
> =>
  Effect.gen(function* () {
    const subscriptions = yield* Subscriptions.Subscriptions
    const all = yield* builds(name)
    if (all.length === 0) return yield* new UnknownProjection({ projection: name, detail: "has no build" })
    return yield* Effect.forEach(all, (build) =>
      Effect.map(subscriptions.status(build.subscription), (subscription) => ({ build, status: subscription }))
    )
  })

/**
 * Waits until the projection's active build has handled every event committed before the call; when no build is
 * active yet, until one has taken over and done so. `timeout` (default 30 seconds) bounds the whole wait.
 *
 * @since 0.1.0
 * @category status
 */
export const waitUntilCaughtUp = (
  name: string,
  options?: { readonly timeout?: Duration.Input | undefined }
): Effect.Effect<
  void,
  Subscriptions.SubscriptionError | Subscriptions.CaughtUpTimeout,
  SqlClient.SqlClient | Subscriptions.Subscriptions
> =>
  Effect.flatMap(Subscriptions.waitTimeout(`projection:${name}`, options?.timeout), (timeout) =>
    Effect.gen(function* () {
      const subscriptions = yield* Subscriptions.Subscriptions
      const active = yield* Effect.repeat(
        Effect.map(builds(name), (all) => all.find((b) => b.state === "active")),
        { until: (found) => found !== undefined, schedule: Schedule.spaced("20 millis") }
      )
      yield* subscriptions.waitUntilCaughtUp(active!.subscription, { timeout: "1 day" })
    }).pipe(
      Effect.timeoutOrElse({
        duration: timeout,
        orElse: () => Effect.fail(new Subscriptions.CaughtUpTimeout({ subscription: `projection:${name}` }))
      })
    )
  )

/**
 * The lifecycle of every build of a projection run in this process (see `Subscriptions.lifecycle`): the current
 * phase of each partition, then every change; a build's events name its subscription
 * (`projection:<name>:v<version>`, `...b<build>`).
 *
 * @since 0.1.0
 * @category status
 */
export const lifecycle = (
  name: string
): Stream.Stream<
  SubscriptionLifecycle.LifecycleEvent,
  Subscriptions.InvalidSubscription,
  Subscriptions.Subscriptions
> =>
  Stream.unwrap(
    Effect.map(Subscriptions.Subscriptions, (subscriptions) =>
      Stream.filter(subscriptions.lifecycle(), (event) => event.subscription.startsWith(`projection:${name}:v`))
    )
  )

/**
 * Drops a version of a projection (every build of it, or only `build`): its tables, checkpoints, parked events,
 * replay boundaries and registry rows. Refuses with `ActiveBuild` when one of them is active. Stop the processes that run it first.
 *
 * @since 0.1.0
 * @category maintenance
 */
export const drop = (
  name: string,
  version: number,
  options?: { readonly build?: number | undefined }
): Effect.Effect<
  ReadonlyArray<Build>,
  UnknownProjection | ActiveBuild | Subscriptions.SubscriptionStorageError,
  SqlClient.SqlClient
> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const t = yield* PgSchema.Tables
    const build = options?.build
    const outcome = yield* Registry.drop(
      sql,
      t,
      name,
      (b) => b.version === version && (build === undefined || b.build === build)
    ).pipe(Effect.mapError(storage("drop")))
    switch (outcome._tag) {
      case "Dropped":
        return outcome.builds
      case "Unknown":
        return yield* new UnknownProjection({
          projection: name,
          detail: `has no version ${version}${build === undefined ? "" : ` build ${build}`}`
        })
      case "Active":
        return yield* new ActiveBuild({ projection: name, version, build: outcome.build.build })
    }
  })

/**
 * Replay boundaries kept in the database (the `replay_boundaries` table): what a consumer projection
 * (`Projection.run`) on Postgres or PGlite needs, so that its boundary survives restarts.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerBoundaries: Layer.Layer<ReplayBoundary.ReplayBoundaries, never, SqlClient.SqlClient> = Layer.effect(
  ReplayBoundary.ReplayBoundaries,
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const t = yield* PgSchema.Tables
    return ReplayBoundary.ReplayBoundaries.of({
      recorded: (key) =>
        Effect.map(Registry.boundary(sql, t, key), boundaryOf).pipe(Effect.mapError(storage("boundary"))),
      now: sql<{ snapshot: string }>`select pg_current_snapshot()::text as snapshot`.pipe(
        Effect.map(([row]) => boundaryOf(row!.snapshot)),
        Effect.mapError(storage("boundary"))
      )
    })
  })
)
