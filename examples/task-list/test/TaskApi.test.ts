import { NodeHttpServer } from "@effect/platform-node"
import { assert, layer } from "@effect/vitest"
import { EventStore } from "@evently/store"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import { createServer } from "node:http"
import { TaskApi } from "../src/TaskApi.ts"

const Server = HttpRouter.serve(TaskApi.routes, { disableLogger: true, disableListenLog: true }).pipe(
  Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })),
  Layer.provide(EventStore.layerMemory)
)

const post = (path: string, body: unknown) =>
  Effect.gen(function* () {
    const server = yield* HttpServer.HttpServer
    const response = yield* Effect.promise(() =>
      fetch(`${HttpServer.formatAddress(server.address)}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body)
      })
    )
    const json = (yield* Effect.promise(() => response.json())) as Record<string, unknown> & {
      readonly state: { readonly tags: ReadonlyArray<string> }
    }
    return { status: response.status, body: json }
  })

layer(Server, { excludeTestServices: true })("the task list over HTTP", (it) => {
  it.effect("serves commands: decided by the domain, checked by the machine; raw events are not taken", () =>
    Effect.gen(function* () {
      assert.strictEqual((yield* post("/tasks/report/Create", { description: "Write the report" })).status, 200)
      assert.strictEqual((yield* post("/tasks/report/Assign", { assignee: "ada" })).status, 200)
      const early = yield* post("/tasks/report/Start", {})
      assert.strictEqual(early.status, 409)
      assert.strictEqual(early.body.tag, "IllegalTransition")
      assert.strictEqual((yield* post("/tasks/report/Schedule", { deadline: "2030-03-31" })).status, 200)
      const started = yield* post("/tasks/report/Start", {})
      assert.strictEqual(started.status, 200)
      assert.deepStrictEqual(started.body.state.tags, ["Started"])
      // Assigning a started task reassigns it: the domain's rule, not the client's event.
      const reassigned = yield* post("/tasks/report/Assign", { assignee: "grace" })
      assert.strictEqual(reassigned.status, 200)
      assert.strictEqual(reassigned.body.version, 5)
      const raw = yield* post("/tasks/report/events", { _tag: "Completed" })
      assert.strictEqual(raw.status, 404)
    })
  )
})
