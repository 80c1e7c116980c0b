import { describe } from "@effect/vitest"
import { EventStore, Subscriptions } from "@evently/store"
import { SubscriptionsSuite } from "@evently/testing"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

describe("Subscriptions.layerMemory", () => {
  SubscriptionsSuite.subscriptionsSuite({
    layer: () => Subscriptions.layerMemory.pipe(Layer.provideMerge(EventStore.layerMemory)),
    append: (stream, count, type = "Happened") =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const result = yield* store.append(
          stream,
          Array.from({ length: count }, (_, i) => ({ type, data: { n: i } }))
        )
        return result.positions
      })
  })
})
