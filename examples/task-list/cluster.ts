/**
 * One process of the task list's cluster: an `effect/cluster` runner that owns a share of the task streams, and an
 * HTTP server of the task commands (`src/TaskApi.ts`) that sends each command to its task's owner, whichever process
 * the request reached. Start as many as you like on one Postgres (see docs/cluster.md):
 *
 *   PORT=3000 RUNNER_PORT=34431 pnpm --filter task-list cluster
 *   PORT=3001 RUNNER_PORT=34432 pnpm --filter task-list cluster
 *
 * Settings (environment): PORT, the HTTP port (default 3000); RUNNER_PORT, the port other runners dial (default
 * 34431); RUNNER_HOST, the address they dial it at (default 127.0.0.1); DATABASE_URL or PG*, the Postgres server
 * (default postgres://postgres@127.0.0.1:5432/test). The events, the cluster's runners, shard locks and messages all
 * live there. It must be a Postgres server: the embedded PGlite serves one process only, and the runners of a
 * cluster are several processes sharing one database. The process prints `ready: ...` once it serves.
 */
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { ClusterHandlers, ClusterRunner } from "@evently/cluster"
import { PgConfig, PgEventStore, PgSchema } from "@evently/postgres"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as HttpRouter from "effect/http/HttpRouter"
import { createServer } from "node:http"
import { TaskApi } from "./src/TaskApi.ts"

const settings = Config.all({
  port: Config.Port("PORT").pipe(Config.withDefault(3000)),
  runnerPort: Config.Port("RUNNER_PORT").pipe(Config.withDefault(34431)),
  runnerHost: Config.String("RUNNER_HOST").pipe(Config.withDefault("127.0.0.1")),
  url: PgConfig.url
})

const main = Effect.gen(function* () {
  const { port, runnerPort, runnerHost, url } = yield* settings
  // The application name shows which runner holds which connection (and shard locks) in pg_stat_activity.
  const Database = PgClient.layer({ url, applicationName: `task-list-runner-${runnerPort}` })
  const Store = PgEventStore.layer().pipe(Layer.provideMerge(PgSchema.layerMigrate), Layer.provideMerge(Database))
  const Ready = Layer.effectDiscard(
    Effect.sync(() =>
      console.log(`ready: HTTP on port ${port}, cluster runner ${runnerHost}:${runnerPort}, pid ${process.pid}`)
    )
  )
  const Server = HttpRouter.serve(TaskApi.routes).pipe(
    Layer.provide(NodeHttpServer.layer(createServer, { port })),
    // Each task stream is a cluster entity: its commands go to the runner that owns its shard.
    Layer.provide(ClusterHandlers.layer()),
    Layer.provide(
      ClusterRunner.layer({
        host: runnerHost,
        port: runnerPort,
        // A dead runner's shards move once another runner's health check marks it unhealthy (every 5 s), or, when
        // the dead runner was the one running the health checks, once its heartbeat expires: after this (default
        // 35 s, longer than a client's 30 s of resending).
        sharding: { shardLockExpiration: "10 seconds" }
      })
    )
  )
  return yield* Layer.launch(Ready.pipe(Layer.provide(Server), Layer.provide(Store)))
})

main.pipe(NodeRuntime.runMain)
