import { describe } from "@effect/vitest"
import { SubscriptionsSuite } from "@evently/testing"
import { insertEvents, layerSubscriptions } from "./helpers.ts"

describe("PgSubscriptions (behavioural suite)", () => {
  SubscriptionsSuite.subscriptionsSuite({
    layer: () => layerSubscriptions(20),
    append: (stream, count, type) => insertEvents(stream, count, type === undefined ? {} : { type })
  })
})
