import { NodeHttpServer } from "@effect/platform-node"
import { ContainerApi } from "@evently/http"
import { EventCodec, EventStore, StreamName, Subscriptions } from "@evently/store"
import { assert, describe, it as test, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import { createServer } from "node:http"
import { TaskEvent, TaskMachine } from "../../../examples/task-list/src/TaskMachine.ts"

const codec = EventCodec.make(TaskEvent)

describe("ContainerApi names", () => {
  test("refuses, when the API is defined, a category that would not be the category of its streams", () => {
    const refused: ReadonlyArray<{ readonly name: string; readonly category?: string }> = [
      { name: "to-dos" },
      { name: "s" },
      { name: "tasks", category: "ta sk" },
      { name: "tasks", category: "t\ud800" },
      { name: "tasks", category: "task-list" }
    ]
    for (const options of refused) {
      assert.throws(
        () => ContainerApi.make({ ...options, machine: TaskMachine, codec }),
        StreamName.InvalidStreamName,
        undefined,
        JSON.stringify(options)
      )
    }
    assert.strictEqual(ContainerApi.make({ name: "to_dos", machine: TaskMachine, codec }).category, "to_do")
  })
})

const tasks = ContainerApi.make({ name: "tasks", machine: TaskMachine, codec, openapiPath: false, docsPath: false })
const stores = Subscriptions.layerMemory.pipe(Layer.provideMerge(EventStore.layerMemory))
const Server = HttpRouter.serve(tasks.routes, { disableLogger: true, disableListenLog: true }).pipe(
  Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })),
  Layer.provideMerge(stores)
)

const call = (method: string, path: string, body?: unknown) =>
  Effect.gen(function* () {
    const server = yield* HttpServer.HttpServer
    const response = yield* Effect.promise(() =>
      fetch(`${HttpServer.formatAddress(server.address)}${path}`, {
        method,
        ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { "content-type": "application/json" } })
      })
    )
    yield* Effect.promise(() => response.text())
    return response.status
  })

layer(Server, { excludeTestServices: true })("ContainerApi ids over HTTP", (it) => {
  it.effect("an id that is not well-formed Unicode (or would be U+FFFD) never reaches the store", () =>
    Effect.gen(function* () {
      // %ED%A0%80 is the UTF-8 form of the lone surrogate U+D800 (not valid UTF-8); %EF%BF%BD is U+FFFD, what
      // Postgres would have stored in its place.
      const requests: ReadonlyArray<readonly [string, string, unknown?]> = [
        ["GET", "/tasks/%ED%A0%80"],
        ["GET", "/tasks/a%ED%A0%80b"],
        ["GET", "/tasks/%EF%BF%BD"],
        ["GET", "/tasks/%ED%A0%80/events"],
        ["GET", "/tasks/%ED%A0%80/events/1"],
        ["GET", "/tasks?after=%ED%A0%80"],
        ["POST", "/tasks?id=%ED%A0%80", { _tag: "Created", description: "x" }],
        ["POST", "/tasks?id=%EF%BF%BD", { _tag: "Created", description: "x" }],
        ["POST", "/tasks/%ED%A0%80/events", { _tag: "Started" }],
        ["POST", "/tasks/%EF%BF%BD/events", { _tag: "Started" }]
      ]
      for (const [method, path, body] of requests) {
        assert.oneOf(yield* call(method, path, body), [400, 404], `${method} ${path}`)
      }
      const store = yield* EventStore.EventStore
      assert.strictEqual((yield* Stream.runCollect(store.readAll())).length, 0)
      assert.strictEqual(yield* call("POST", "/tasks?id=ok", { _tag: "Created", description: "x" }), 201)
      const streams = [...(yield* Stream.runCollect(store.readAll()))].map((event) => event.stream)
      assert.deepStrictEqual(streams, ["task-ok"])
    })
  )
})
