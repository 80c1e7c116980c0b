import { PgliteClient } from "@evently/pglite"
import { PgEventStore, PgSchema } from "@evently/postgres"
import { UnreadableRowsSuite } from "@evently/testing"
import * as Layer from "effect/Layer"

// The same damaged rows on the embedded database, through the same adapter.
const database = PgSchema.layerMigrate.pipe(Layer.orDie, Layer.provideMerge(PgliteClient.layer()))

UnreadableRowsSuite.suite(
  "PgEventStore on PGlite: unreadable rows",
  PgEventStore.layer().pipe(Layer.provideMerge(database)),
  {
    timeout: "120 seconds"
  }
)
