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
import { EventCodec, type EventStore, Subscriptions } from "@evently/store"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as HttpRouter from "effect/http/HttpRouter"
import type * as SqlClient from "effect/sql/SqlClient"
import { createServer } from "node:http"
import { TaskEvent, TaskMachine } from "./src/TaskMachine.ts"

const tasks = ContainerApi.make({ name: "tasks", machine: TaskMachine, codec: EventCodec.make(TaskEvent) })

const HttpServer = Layer.unwrap(
  Effect.map(Config.Port("PORT").pipe(Config.withDefault(3000)), (port) => NodeHttpServer.layer(createServer, { port }))
)

// PgSubscriptions holds a connection of its own (its lock), which the embedded database's one session cannot give;
// there, commits happen one at a time in position order, which is what the memory subscriptions over the store need.
const Store = Layer.unwrap(
  Effect.map(Database.choice, (chosen) => {
    const subscriptions: Layer.Layer<Subscriptions.Subscriptions, never, EventStore.EventStore | SqlClient.SqlClient> =
      chosen._tag === "Postgres" ? PgSubscriptions.layer() : Subscriptions.layerMemory
    return subscriptions.pipe(
      Layer.provideMerge(PgEventStore.layer()),
      Layer.provideMerge(PgSchema.layerMigrate),
      Layer.provideMerge(
        Layer.unwrap(
          Effect.as(Effect.logInfo(`evently: using ${Database.describe(chosen)}`), Database.layerChoice(chosen))
        )
      )
    )
  })
)

HttpRouter.serve(tasks.routes).pipe(Layer.provide(HttpServer), Layer.provide(Store), Layer.launch, NodeRuntime.runMain)
