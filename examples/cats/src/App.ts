/**
 * The demo's wiring: the database `Database.layer` chooses (PGlite in process unless `DATABASE_URL` or `PG*` is
 * set), migrated, with the Postgres event store and subscriptions on it.
 */
import { Database } from "@evently/pglite"
import { PgEventStore, PgSchema, PgSubscriptions } from "@evently/postgres"
import * as Layer from "effect/Layer"

/** `EventStore` and `Subscriptions` on the chosen database, after its migrations ran. */
export const layer = Layer.mergeAll(PgEventStore.layer(), PgSubscriptions.layer()).pipe(
  Layer.provideMerge(PgSchema.layerMigrate),
  Layer.provide(Database.layer)
)
