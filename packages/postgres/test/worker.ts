/**
 * A subscription worker run as a child process by PgSubscriptionsProcesses.test.ts: it records each event it handles
 * with its own pid, in the same transaction as the checkpoint. The database name comes from
 * `EVENTLY_WORKER_DATABASE`, the server from `DATABASE_URL` / `PG*`; its connections are named `worker-<pid>`.
 */
import { PgClient } from "@effect/sql-pg"
import { PgConfig, PgSubscriptions } from "@evently/postgres"
import { Subscriptions } from "@evently/store"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as SqlClient from "effect/sql/SqlClient"

const database = process.env["EVENTLY_WORKER_DATABASE"] ?? "test"

const program = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const subs = yield* Subscriptions.Subscriptions
  yield* Console.log(`ready ${process.pid}`)
  return yield* subs.run(
    "procs",
    (event) => sql`insert into proc_handled (position, pid) values (${event.position}, ${process.pid})`,
    { categories: ["proc"], transactional: true, batchSize: 5, pollInterval: "200 millis" }
  )
})

const DatabaseLive = Layer.unwrap(
  Effect.map(Effect.orDie(PgConfig.url), (url) =>
    PgClient.layer({ url, database, maxConnections: 4, applicationName: `worker-${process.pid}` })
  )
)

Effect.runFork(
  program.pipe(
    Effect.provide(
      PgSubscriptions.layer({ lockRetryInterval: "100 millis" }).pipe(Layer.provideMerge(Layer.orDie(DatabaseLive)))
    )
  )
)
