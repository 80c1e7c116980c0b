import { PgEventStore, PgSchema, PgSnapshots } from "@evently/postgres"
import { CommandHandlerSuite, TestDatabase } from "@evently/testing"
import * as Layer from "effect/Layer"

const migrated = Layer.provideMerge(PgSchema.layerMigrate, TestDatabase.layer({ maxConnections: 8 }))

CommandHandlerSuite.suite(
  "Postgres",
  Layer.merge(PgEventStore.layer(), PgSnapshots.layer).pipe(Layer.provide(migrated), Layer.orDie)
)
