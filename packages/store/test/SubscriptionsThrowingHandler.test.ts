import { assert, it } from "@effect/vitest"
import { EventStore, Subscriptions } from "@evently/store"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"

const layer = Subscriptions.layerMemory.pipe(Layer.provideMerge(EventStore.layerMemory))

it.effect(
  "run (Stop): a handler that throws instead of returning an Effect ends the run with that defect, after the events before it, and commits nothing of its batch",
  () =>
    Effect.gen(function* () {
      const store = yield* EventStore.EventStore
      const subs = yield* Subscriptions.Subscriptions
      const { positions } = yield* store.append("cart-1", [
        { type: "Added", data: 1 },
        { type: "Added", data: 2 },
        { type: "Added", data: 3 }
      ])
      const handled: Array<bigint> = []
      const boom = new Error("the handler threw")
      const exit = yield* Effect.exit(
        subs.run(
          "throws",
          (event) => {
            if (event.position === positions[2]) throw boom
            handled.push(event.position)
            return Effect.void
          },
          { batchSize: 2 }
        )
      )
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) assert.deepStrictEqual(Cause.squash(exit.cause), boom)
      assert.deepStrictEqual(handled, [positions[0], positions[1]])
      // The first batch committed; the one whose handler threw did not.
      const status = yield* subs.status("throws")
      assert.deepStrictEqual(
        status.partitions.map((p) => p.checkpoint.position),
        [positions[1]]
      )
    }).pipe(Effect.provide(layer))
)
