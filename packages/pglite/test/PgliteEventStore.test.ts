import { PgliteClient } from "@evently/pglite"
import { PgEventStore, PgSchema } from "@evently/postgres"
import { EventStoreContract } from "@evently/testing"
import * as Layer from "effect/Layer"

// The Postgres adapter, unchanged, on the embedded database: one PGlite for the whole suite (starting one takes
// seconds), migrated by the same migrations as a server.
const database = Layer.provideMerge(PgSchema.layerMigrate, PgliteClient.layer())

EventStoreContract.suite("PgEventStore on PGlite", PgEventStore.layer().pipe(Layer.provide(database)), {
  timeout: "120 seconds"
})
