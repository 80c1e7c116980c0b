import { afterAll, describe } from "@effect/vitest"
import { PGlite } from "@electric-sql/pglite"
import { PgClient } from "@effect/sql-pg"
import { PgliteClient } from "@evently/pglite"
import { PgEventStore, PgSchema, PgSubscriptions } from "@evently/postgres"
import { SubscriptionsSuite } from "@evently/testing"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

// One PGlite for the file (starting one takes seconds); each test gets an empty log of its own through a fresh
// table prefix, on a fresh client over the same instance.
let instance: Promise<PGlite> | undefined
const shared = () => (instance ??= PGlite.create())
afterAll(() => instance?.then((db) => db.close()))

let tests = 0
const fresh = () => {
  const tables = PgSchema.layerTables(`t${++tests}_`)
  const client = Layer.unwrap(
    Effect.map(Effect.promise(shared), (db) => PgClient.layerFrom(PgliteClient.fromPglite(db)))
  )
  const migrated = Layer.provideMerge(PgSchema.layerMigrate, client).pipe(Layer.orDie)
  return Layer.mergeAll(
    PgSubscriptions.layer({ lockRetryInterval: "100 millis", reconnectDelay: "100 millis" }),
    PgEventStore.layer()
  ).pipe(Layer.provideMerge(migrated), Layer.provide(tables))
}

describe("PgSubscriptions on PGlite (behavioural suite)", () => {
  SubscriptionsSuite.subscriptionsSuite({
    layer: fresh,
    append: SubscriptionsSuite.appendThroughStore
  })
})
