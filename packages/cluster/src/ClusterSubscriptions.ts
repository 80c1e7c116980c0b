/**
 * Subscriptions and projections placed by the cluster: each runs as an `effect/cluster` singleton, on exactly one
 * runner at a time, and moves with its shard when that runner leaves or dies; a partitioned one runs each partition
 * as a singleton of its own, so partitions spread over the runners. This is where an app that runs a cluster decides
 * where its consumers run, beside its stream entities, instead of every process starting every consumer and waiting
 * on advisory locks.
 *
 * The subscription's own lease (the adapter's advisory lock) stays underneath as the fence: a singleton is placed
 * by shard assignment, which a runner cut off from the others may hold on to for a while, and the lease makes sure
 * two runners never commit checkpoints for one partition at once. In a healthy cluster the lease is never contended.
 *
 * @since 0.1.0
 */
import * as Singleton from "effect/cluster/Singleton"
import type * as Sharding from "effect/cluster/Sharding"
import * as Cause from "effect/Cause"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"

/**
 * Options of a cluster-placed consumer: the shard group its singletons belong to (default `default`), and the
 * longest wait between restarts of a run that failed (default 30 seconds; the wait doubles from 1 second).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly shardGroup?: string | undefined
  readonly maxRestartDelay?: Duration.Input | undefined
}

/** The singleton's name in the cluster: evently's consumers apart from the app's own singletons. */
const singletonName = (name: string) => `evently/${name}`

/**
 * Runs `run` forever: a failure or a defect (a handler that stopped the subscription, a lost database) is logged
 * and the run starts again after a backoff, as a process supervisor would restart a consumer.
 */
const supervised = <E, R>(name: string, run: Effect.Effect<unknown, E, R>, options: Options | undefined) =>
  run.pipe(
    Effect.andThen(Effect.never),
    Effect.catchCause((cause) =>
      Effect.andThen(
        Effect.logWarning(`evently: consumer '${name}' failed; it restarts after a backoff`, Cause.pretty(cause)),
        Effect.fail(cause)
      )
    ),
    Effect.retry(
      Schedule.min([Schedule.exponential("1 second"), Schedule.spaced(options?.maxRestartDelay ?? "30 seconds")])
    ),
    Effect.asVoid
  )

/**
 * Runs a consumer (`subscriptions.run(name, …)`, `PgProjections.run(projection)`, a relay) as a cluster singleton
 * named `name`: on one runner of the cluster at a time, restarted after a failure, moved when its runner goes.
 *
 * ```ts
 * import { ClusterSubscriptions } from "@evently/cluster"
 * import { Subscriptions } from "@evently/store"
 * import * as Effect from "effect/Effect"
 *
 * export const Mailer = ClusterSubscriptions.singleton(
 *   "mailer",
 *   Effect.flatMap(Subscriptions.Subscriptions, (subscriptions) =>
 *     subscriptions.run("mailer", (event) => Effect.log(event.type), { categories: ["task"] })
 *   )
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const singleton = <E, R>(
  name: string,
  run: Effect.Effect<unknown, E, R>,
  options?: Options
): Layer.Layer<never, never, Sharding.Sharding | Exclude<R, Scope.Scope>> =>
  Singleton.make(singletonName(name), supervised(name, run, options), { shardGroup: options?.shardGroup })

/**
 * Runs the `partitions` partitions of a consumer as singletons of their own (`<name>/<partition>`), so they spread
 * over the runners: `run(partition)` runs one (pass it as the subscription's `partition` option, with `partitions`).
 * `partitions` is a whole number from 1 to 1,000; any other value makes the layer die saying so.
 *
 * @since 0.1.0
 * @category layers
 */
export const partitioned = <E, R>(
  name: string,
  partitions: number,
  run: (partition: number) => Effect.Effect<unknown, E, R>,
  options?: Options
): Layer.Layer<never, never, Sharding.Sharding | Exclude<R, Scope.Scope>> =>
  !Number.isInteger(partitions) || partitions < 1 || partitions > 1000
    ? Layer.effectDiscard(
        Effect.die(
          new RangeError(`consumer '${name}': partitions must be a whole number from 1 to 1000, got ${partitions}`)
        )
      )
    : Layer.mergeAll(
        Layer.empty,
        ...Array.from({ length: partitions }, (_, partition) =>
          singleton(`${name}/${partition}`, run(partition), options)
        )
      )
