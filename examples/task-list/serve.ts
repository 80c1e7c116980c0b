/**
 * Serves the task machine's events as HTTP resources (`@evently/http`): `POST /tasks`, `POST /tasks/{id}/events`,
 * `GET /tasks/{id}`, its events, the index of tasks, the graph, `/openapi.json` and the Scalar page at `/docs`.
 * The database is the embedded PGlite unless DATABASE_URL or PG* variables name a Postgres server; the port is PORT
 * (default 3000). Run with `pnpm --filter task-list serve`.
 */
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { ContainerApi } from "@evently/http"
import { Database } from "@evently/pglite"
import { PgEventStore, PgSchema, PgSubscriptions } from "@evently/postgres"
import { EventCodec } from "@evently/store"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as HttpRouter from "effect/http/HttpRouter"
import { createServer } from "node:http"
import { TaskEvent, TaskMachine } from "./src/TaskMachine.ts"

const tasks = ContainerApi.make({ name: "tasks", machine: TaskMachine, codec: EventCodec.make(TaskEvent) })

const HttpServer = Layer.unwrap(
  Effect.map(Config.Port("PORT").pipe(Config.withDefault(3000)), (port) => NodeHttpServer.layer(createServer, { port }))
)

const Store = PgSubscriptions.layer().pipe(
  Layer.provideMerge(PgEventStore.layer()),
  Layer.provideMerge(PgSchema.layerMigrate),
  Layer.provideMerge(Database.layer)
)

HttpRouter.serve(tasks.routes).pipe(Layer.provide(HttpServer), Layer.provide(Store), Layer.launch, NodeRuntime.runMain)
