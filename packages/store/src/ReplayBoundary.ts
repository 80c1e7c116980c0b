/**
 * Where a projection's history ends and its new events begin: the events committed before the projection (one
 * version, one build of it) first started are replays, the others are new. Handlers read it as `replaying`, so that
 * side effects (emails, broker publishes) can be gated while a projection is built from an old log.
 *
 * The boundary is recorded once, when the projection first starts, and kept: by `layerMemory` in the process (the
 * head position), by `PgProjections.layerBoundaries` in the projections table (the database's snapshot).
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as EventStore from "./EventStore.ts"
import * as Subscriptions from "./Subscriptions.ts"

/**
 * The boundary: `Position` (a log that commits in position order: events at or before `position` are history) or
 * `Snapshot` (Postgres: the transactions visible in the snapshot taken at the first start, `xmin:xmax:inProgress` as
 * `pg_current_snapshot()` gives them, are history).
 *
 * @since 0.1.0
 * @category models
 */
export type ReplayBoundary =
  | { readonly _tag: "Position"; readonly position: bigint }
  | {
      readonly _tag: "Snapshot"
      readonly xmin: bigint
      readonly xmax: bigint
      readonly inProgress: ReadonlyArray<bigint>
    }

/**
 * Whether `event` was committed before the boundary, i.e. is replayed history. For a `Snapshot`: its transaction was
 * visible in the snapshot (below `xmin`, or below `xmax` and not in progress).
 *
 * @since 0.1.0
 * @category utils
 */
export const isReplay = (boundary: ReplayBoundary, event: EventStore.RecordedEvent): boolean => {
  if (boundary._tag === "Position") return event.position <= boundary.position
  const tx = event.transactionId
  if (tx < boundary.xmin) return true
  if (tx >= boundary.xmax) return false
  return !boundary.inProgress.includes(tx)
}

/**
 * Reads the text form of a Postgres snapshot (`pg_current_snapshot()::text`, `xmin:xmax:xip,xip,...`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromSnapshotText = (text: string): Option.Option<ReplayBoundary> => {
  const match = /^(\d+):(\d+):([\d,]*)$/.exec(text)
  if (match === null) return Option.none()
  const inProgress = match[3]!.length === 0 ? [] : match[3]!.split(",").map((xid) => BigInt(xid))
  return Option.some({ _tag: "Snapshot", xmin: BigInt(match[1]!), xmax: BigInt(match[2]!), inProgress })
}

/**
 * The boundaries service: `recorded(key)` gives the boundary recorded when `key` (a projection's subscription name)
 * first asked, recording it now the first time; `now` gives one for this moment without recording it (what an
 * ephemeral projection, rebuilt on each start, uses).
 *
 * @since 0.1.0
 * @category services
 */
export class ReplayBoundaries extends Context.Service<
  ReplayBoundaries,
  {
    readonly recorded: (key: string) => Effect.Effect<ReplayBoundary, Subscriptions.SubscriptionStorageError>
    readonly now: Effect.Effect<ReplayBoundary, Subscriptions.SubscriptionStorageError>
  }
>()("@evently/store/ReplayBoundaries") {}

/**
 * Boundaries over an `EventStore` whose log commits in position order (the memory store): the head position,
 * recorded in the process.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<ReplayBoundaries, never, EventStore.EventStore> = Layer.effect(
  ReplayBoundaries,
  Effect.gen(function* () {
    const store = yield* EventStore.EventStore
    const recorded = new Map<string, ReplayBoundary>()
    const now = Stream.runLast(store.readAll()).pipe(
      Effect.map((last): ReplayBoundary => ({
        _tag: "Position",
        position: Option.match(last, { onNone: () => 0n, onSome: (event) => event.position })
      })),
      Effect.mapError((cause) => new Subscriptions.SubscriptionStorageError({ operation: "replay boundary", cause }))
    )
    return ReplayBoundaries.of({
      now,
      recorded: (key) =>
        Effect.suspend(() => {
          const known = recorded.get(key)
          if (known !== undefined) return Effect.succeed(known)
          return Effect.tap(now, (boundary) => Effect.sync(() => recorded.set(key, recorded.get(key) ?? boundary)))
        }).pipe(Effect.map(() => recorded.get(key)!))
    })
  })
)
