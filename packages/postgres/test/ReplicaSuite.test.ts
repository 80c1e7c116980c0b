import { afterAll, beforeAll, describe } from "@effect/vitest"
import { PgSchema, PgSubscriptions } from "@evently/postgres"
import { SubscriptionsSuite } from "@evently/testing"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { TestDatabase } from "@evently/testing"
import { insertEvents } from "./helpers.ts"
import { layerReplica, type Standby, startStandby, stopStandby } from "./standby.ts"

// One standby for the file; each test's database (created on the primary) reaches it by replication.
let standby: Standby | undefined
beforeAll(async () => {
  standby = await startStandby()
}, 60_000)
afterAll(async () => {
  if (standby !== undefined) await stopStandby(standby)
})

const layer = () =>
  PgSubscriptions.layer({ reads: "replica", lockRetryInterval: "100 millis", reconnectDelay: "100 millis" }).pipe(
    Layer.provideMerge(Layer.unwrap(Effect.sync(() => layerReplica(standby!.port)))),
    Layer.provideMerge(
      PgSchema.layerMigrate.pipe(Layer.orDie, Layer.provideMerge(TestDatabase.layer({ maxConnections: 20 })))
    )
  )

describe("PgSubscriptions reading from a streaming replica (behavioural suite)", () => {
  SubscriptionsSuite.subscriptionsSuite({
    layer,
    append: (stream, count, type) => insertEvents(stream, count, type === undefined ? {} : { type })
  })
})
