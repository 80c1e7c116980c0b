import { PgEventStore, PgSchema } from "@evently/postgres"
import { EventStoreContract, TestDatabase } from "@evently/testing"
import * as Layer from "effect/Layer"

const database = TestDatabase.layer({ maxConnections: 8 })
const store = PgEventStore.layer().pipe(Layer.provide(PgSchema.layerMigrate), Layer.provide(database))

EventStoreContract.suite("PgEventStore", store)
