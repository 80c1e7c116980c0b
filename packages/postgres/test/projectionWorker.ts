/**
 * A projection worker run as a child process by PgProjectionsProcesses.test.ts: it runs one partition (of 3) of the
 * items projection's version `EVENTLY_WORKER_VERSION`. The database name comes from `EVENTLY_WORKER_DATABASE`, the
 * server from `DATABASE_URL` / `PG*`.
 */
import { PgClient } from "@effect/sql-pg"
import { PgConfig, PgSubscriptions } from "@evently/postgres"
import * as PgProjections from "@evently/postgres/PgProjections"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { ItemsV1, ItemsV2 } from "./projections.ts"

const database = process.env["EVENTLY_WORKER_DATABASE"] ?? "test"
const partition = Number(process.env["EVENTLY_WORKER_PARTITION"] ?? "0")
const projection = process.env["EVENTLY_WORKER_VERSION"] === "1" ? ItemsV1 : ItemsV2

const program = Effect.gen(function* () {
  yield* Console.log(`ready ${process.pid}`)
  return yield* PgProjections.run(projection, {
    partitions: 3,
    partition,
    registryPollInterval: "100 millis",
    pollInterval: "200 millis"
  })
})

const DatabaseLive = Layer.unwrap(
  Effect.map(Effect.orDie(PgConfig.url), (url) => PgClient.layer({ url, database, maxConnections: 8 }))
)

Effect.runFork(
  program.pipe(
    Effect.provide(
      PgSubscriptions.layer({ lockRetryInterval: "100 millis" }).pipe(Layer.provideMerge(Layer.orDie(DatabaseLive)))
    )
  )
)
