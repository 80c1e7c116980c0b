import { PgEventStore, PgSchema } from "@evently/postgres"
import { TestDatabase, UnreadableRowsSuite } from "@evently/testing"
import * as Layer from "effect/Layer"

// Rows damaged with SQL, read back through every read path of the store and the command handler.
const database = PgSchema.layerMigrate.pipe(Layer.orDie, Layer.provideMerge(TestDatabase.layer()))

UnreadableRowsSuite.suite("PgEventStore: unreadable rows", PgEventStore.layer().pipe(Layer.provideMerge(database)))
