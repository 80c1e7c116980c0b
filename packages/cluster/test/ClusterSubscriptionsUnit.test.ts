import { assert, describe, it } from "@effect/vitest"
import { ClusterRunner, ClusterSubscriptions } from "@evently/cluster"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Ref from "effect/Ref"

describe("ClusterSubscriptions on one in-process runner", () => {
  it.live("runs each partition of a partitioned consumer once", () =>
    Effect.gen(function* () {
      const started = yield* Ref.make<ReadonlyArray<number>>([])
      const all = yield* Deferred.make<void>()
      const consumer = ClusterSubscriptions.partitioned("p", 3, (partition) =>
        Effect.andThen(
          Ref.updateAndGet(started, (list) => [...list, partition]),
          (list) => (list.length === 3 ? Deferred.succeed(all, undefined) : Effect.void)
        ).pipe(Effect.andThen(Effect.never))
      )
      yield* Effect.scoped(
        Effect.andThen(
          Layer.build(consumer.pipe(Layer.provide(ClusterRunner.layerTest))),
          Deferred.await(all).pipe(Effect.timeout("10 seconds"))
        )
      )
      assert.deepStrictEqual((yield* Ref.get(started)).toSorted(), [0, 1, 2])
    })
  )

  it.live("restarts a consumer whose run failed", () =>
    Effect.gen(function* () {
      const runs = yield* Ref.make(0)
      const twice = yield* Deferred.make<void>()
      const consumer = ClusterSubscriptions.singleton(
        "flaky",
        Effect.flatMap(
          Ref.updateAndGet(runs, (n) => n + 1),
          (n) => (n === 1 ? Effect.fail("first run fails") : Deferred.succeed(twice, undefined))
        )
      )
      yield* Effect.scoped(
        Effect.andThen(
          Layer.build(consumer.pipe(Layer.provide(ClusterRunner.layerTest))),
          Deferred.await(twice).pipe(Effect.timeout("10 seconds"))
        )
      )
      assert.strictEqual(yield* Ref.get(runs), 2)
    })
  )

  it.live("a partition count out of range makes the layer die saying so", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(
        Effect.scoped(
          Layer.build(
            ClusterSubscriptions.partitioned("p", 0, () => Effect.never).pipe(Layer.provide(ClusterRunner.layerTest))
          )
        )
      )
      assert.isTrue(Exit.isFailure(exit))
      assert.include(String(Exit.isFailure(exit) ? exit.cause : ""), "partitions must be a whole number")
    })
  )
})
