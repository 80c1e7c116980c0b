import { describe } from "@effect/vitest"
import { EventStore, Subscriptions } from "@evently/store"
import { SubscriptionsSuite } from "@evently/testing"
import * as Layer from "effect/Layer"

describe("Subscriptions.layerMemory", () => {
  SubscriptionsSuite.subscriptionsSuite({
    layer: () => Subscriptions.layerMemory.pipe(Layer.provideMerge(EventStore.layerMemory)),
    append: SubscriptionsSuite.appendThroughStore
  })
})
