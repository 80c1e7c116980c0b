/**
 * Serves the task list's commands over HTTP (`src/TaskApi.ts`): `POST /tasks/{id}/{Command}` for each command, decided
 * by the domain and checked by the machine, `GET /tasks/{id}`, `/openapi.json` and the Scalar page at `/docs`.
 * The database is the embedded PGlite unless DATABASE_URL or PG* variables name a Postgres server; the port is PORT
 * (default 3000). Run with `pnpm --filter task-list serve`.
 */
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Database } from "@evently/pglite"
import { PgEventStore, PgSchema } from "@evently/postgres"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as HttpRouter from "effect/http/HttpRouter"
import { createServer } from "node:http"
import { TaskApi } from "./src/TaskApi.ts"

const HttpServer = Layer.unwrap(
  Effect.map(Config.Port("PORT").pipe(Config.withDefault(3000)), (port) => NodeHttpServer.layer(createServer, { port }))
)

const Store = PgEventStore.layer().pipe(Layer.provideMerge(PgSchema.layerMigrate), Layer.provideMerge(Database.layer))

HttpRouter.serve(TaskApi.routes).pipe(
  Layer.provide(HttpServer),
  Layer.provide(Store),
  Layer.launch,
  NodeRuntime.runMain
)
