import { NodeHttpServer } from "@effect/platform-node"
import { ContainerApi } from "@evently/http"
import { PgEventStore, PgSchema, PgSubscriptions } from "@evently/postgres"
import { EventCodec, EventStore, ExpectedVersion } from "@evently/store"
import { TestDatabase } from "@evently/testing"
import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as SqlClient from "effect/sql/SqlClient"
import * as Stream from "effect/Stream"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import { createServer } from "node:http"
import { TaskEvent, TaskMachine } from "../../../examples/task-list/src/TaskMachine.ts"

const tasks = ContainerApi.make({
  name: "tasks",
  machine: TaskMachine,
  codec: EventCodec.make(TaskEvent),
  openapiPath: false,
  docsPath: false
})

const database = PgSchema.layerMigrate.pipe(Layer.orDie, Layer.provideMerge(TestDatabase.layer({ maxConnections: 12 })))

/** The Postgres store, except that reading a stream whose id is `boom` dies: a defect inside a request. */
const store = Layer.effect(
  EventStore.EventStore,
  Effect.map(PgEventStore.make(), (inner) =>
    EventStore.EventStore.of({
      ...inner,
      readStream: (stream, options) =>
        stream.endsWith("-boom") ? Stream.die(new Error("boom")) : inner.readStream(stream, options)
    })
  )
)

const stores = Layer.mergeAll(
  store,
  PgSubscriptions.layer({ lockRetryInterval: "100 millis", reconnectDelay: "100 millis" })
).pipe(Layer.provideMerge(database))

const Server = HttpRouter.serve(tasks.routes, { disableLogger: true, disableListenLog: true }).pipe(
  Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
)

interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  readonly body: Record<string, unknown>
}

/** One request over a real socket; `body` is sent as is when it is a string, else as JSON. */
const call = (
  method: string,
  path: string,
  options: { readonly body?: unknown; readonly headers?: Record<string, string> } = {}
) =>
  Effect.gen(function* () {
    const server = yield* HttpServer.HttpServer
    const body =
      options.body === undefined
        ? undefined
        : typeof options.body === "string"
          ? options.body
          : JSON.stringify(options.body)
    const response = yield* Effect.promise(() =>
      fetch(`${HttpServer.formatAddress(server.address)}${path}`, {
        method,
        headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...options.headers },
        ...(body === undefined ? {} : { body })
      })
    )
    const text = yield* Effect.promise(() => response.text())
    const type = response.headers.get("content-type") ?? ""
    const parsed = type.includes("json") && text !== "" ? (JSON.parse(text) as Record<string, unknown>) : {}
    return { status: response.status, headers: response.headers, text, body: parsed } satisfies Reply
  })

/** Asserts a problem+json reply of this status and tag, and returns its body. */
const problem = (reply: Reply, status: number, tag: string, where = `${status} ${tag}`) => {
  assert.strictEqual(reply.status, status, `${where}: ${reply.text}`)
  assert.strictEqual(reply.headers.get("content-type"), "application/problem+json", where)
  assert.strictEqual(reply.body.status, status, where)
  assert.strictEqual(reply.body.tag, tag, where)
  assert.isString(reply.body.type, where)
  assert.isString(reply.body.title, where)
  return reply.body
}

const unique = () => crypto.randomUUID().replaceAll("-", "").slice(0, 12)

const createTask = (id: string) => call("POST", `/tasks?id=${id}`, { body: { _tag: "Created", description: id } })

/** The position of a container's event at `version`. */
const positionOf = (id: string, version: number) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const tables = yield* PgSchema.Tables
    const [row] = yield* sql<{ position: string }>`select position::text as position from ${sql(tables.events)}
      where stream = ${`task-${id}`} and stream_version = ${version}`
    return row!.position
  })

layer(Server.pipe(Layer.provideMerge(stores)), { excludeTestServices: true, timeout: "60 seconds" })(
  "ContainerApi errors",
  (it) => {
    it.effect("a stored row that no longer decodes is a 500 problem naming its position, on every endpoint", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const tables = yield* PgSchema.Tables
        for (const [damage, reason] of [
          ["metadata", "its metadata null is not"],
          ["recorded_at", "its recorded_at is not a date"]
        ] as const) {
          const id = `damaged-${damage.replace("_", "-")}-${unique()}`
          assert.strictEqual((yield* createTask(id)).status, 201)
          const assigned = yield* call("POST", `/tasks/${id}/events`, { body: { _tag: "Assigned", assignee: "ada" } })
          assert.strictEqual(assigned.status, 201)
          const position = yield* positionOf(id, 2)
          if (damage === "metadata") {
            yield* sql`update ${sql(tables.events)} set metadata = 'null'::jsonb where position = ${BigInt(position)}`
          } else {
            yield* sql`update ${sql(tables.events)} set recorded_at = 'infinity' where position = ${BigInt(position)}`
          }
          const replies = [
            ["GET container", yield* call("GET", `/tasks/${id}`)],
            ["GET events", yield* call("GET", `/tasks/${id}/events`)],
            ["GET event", yield* call("GET", `/tasks/${id}/events/2`)],
            ["POST event", yield* call("POST", `/tasks/${id}/events`, { body: { _tag: "Scheduled", deadline: "x" } })],
            [
              "POST event with an Idempotency-Key",
              yield* call("POST", `/tasks/${id}/events`, {
                body: { _tag: "Scheduled", deadline: "x" },
                headers: { "idempotency-key": `key-${unique()}` }
              })
            ]
          ] as const
          for (const [where, reply] of replies) {
            const body = problem(reply, 500, "UnreadableEvent", `${damage}: ${where}`)
            assert.strictEqual(body.position, position, where)
            assert.strictEqual(body.stream, `task-${id}`, where)
            assert.include(
              body.detail,
              `Stored event at position ${position} on stream 'task-${id}' cannot be read: ${reason}`,
              where
            )
          }
          // The event before the damaged one is still served.
          const first = yield* call("GET", `/tasks/${id}/events/1`)
          assert.strictEqual(first.status, 200)
        }
      })
    )

    it.effect("an Idempotency-Key reused for another request on the same resource is a 422 problem", () =>
      Effect.gen(function* () {
        const key = `create-${unique()}`
        const first = yield* call("POST", "/tasks", {
          body: { _tag: "Created", description: "first" },
          headers: { "idempotency-key": key }
        })
        assert.strictEqual(first.status, 201)
        const id = first.body.id as string
        const other = yield* call("POST", "/tasks", {
          body: { _tag: "Created", description: "second" },
          headers: { "idempotency-key": key }
        })
        const body = problem(other, 422, "IdempotencyKeyReused")
        assert.strictEqual(body.key, key)
        // The same request again keeps returning the first response, whatever happened since.
        const again = yield* call("POST", "/tasks", {
          body: { description: "first", _tag: "Created" },
          headers: { "idempotency-key": key }
        })
        assert.strictEqual(again.status, 201)
        assert.deepStrictEqual(again.body, first.body)

        const appendKey = `assign-${unique()}`
        const assign = (assignee: string, headers: Record<string, string> = {}) =>
          call("POST", `/tasks/${id}/events`, {
            body: { _tag: "Assigned", assignee },
            headers: { "idempotency-key": appendKey, ...headers }
          })
        const assigned = yield* assign("ada")
        assert.strictEqual(assigned.status, 201)
        problem(yield* assign("grace"), 422, "IdempotencyKeyReused")
        // Another endpoint of the same resource under the create's key.
        problem(
          yield* call("POST", `/tasks/${id}/events`, {
            body: { _tag: "Scheduled", deadline: "soon" },
            headers: { "idempotency-key": key }
          }),
          422,
          "IdempotencyKeyReused",
          "the create's key on an append"
        )
        const retried = yield* assign("ada")
        assert.strictEqual(retried.status, 201)
        assert.deepStrictEqual(retried.body, assigned.body)
        // Nothing of the refused requests was written.
        const events = yield* call("GET", `/tasks/${id}/events`)
        assert.deepStrictEqual(
          (events.body.items as ReadonlyArray<{ readonly type: string }>).map((event) => event.type),
          ["Created", "Assigned"]
        )
        // The key is scoped to its resource: on another container it is a new request.
        const elsewhere = `elsewhere-${unique()}`
        yield* createTask(elsewhere)
        const there = yield* call("POST", `/tasks/${elsewhere}/events`, {
          body: { _tag: "Assigned", assignee: "grace" },
          headers: { "idempotency-key": appendKey }
        })
        assert.strictEqual(there.status, 201)
      })
    )

    it.effect("an Idempotency-Key whose events were stored without a fingerprint is compared by its event", () =>
      Effect.gen(function* () {
        const events = yield* EventStore.EventStore
        const id = `legacy-${unique()}`
        const key = `legacy-key-${unique()}`
        yield* createTask(id)
        // As a handler of an earlier release stored it: the key as the causation id, no fingerprint header.
        yield* events.append(
          `task-${id}`,
          [{ type: "Assigned", data: { assignee: "ada" }, metadata: { causationId: key, correlationId: key } }],
          { expected: ExpectedVersion.Exact(1) }
        )
        const send = (assignee: string) =>
          call("POST", `/tasks/${id}/events`, {
            body: { _tag: "Assigned", assignee },
            headers: { "idempotency-key": key }
          })
        const same = yield* send("ada")
        assert.strictEqual(same.status, 201)
        assert.strictEqual(same.headers.get("etag"), '"2"')
        problem(yield* send("grace"), 422, "IdempotencyKeyReused")
      })
    )

    it.effect("a body that is not JSON is a 415 problem", () =>
      Effect.gen(function* () {
        for (const contentType of ["text/plain", "application/xml", "application/x-www-form-urlencoded"]) {
          const reply = yield* call("POST", "/tasks", {
            body: '{"_tag":"Created","description":"x"}',
            headers: { "content-type": contentType }
          })
          const body = problem(reply, 415, "UnsupportedMediaType", contentType)
          assert.strictEqual(body.contentType, contentType)
          assert.deepStrictEqual(body.supported, ["application/json"])
        }
        const id = `media-${unique()}`
        yield* createTask(id)
        problem(
          yield* call("POST", `/tasks/${id}/events`, {
            body: "assignee=ada",
            headers: { "content-type": "text/plain" }
          }),
          415,
          "UnsupportedMediaType"
        )
        const json = yield* call("POST", `/tasks/${id}/events`, {
          body: { _tag: "Assigned", assignee: "ada" },
          headers: { "content-type": "application/json; charset=utf-8" }
        })
        assert.strictEqual(json.status, 201)
      })
    )

    it.effect("a malformed If-Match is a 400 problem; a well-formed one that does not match is 412", () =>
      Effect.gen(function* () {
        const id = `if-match-${unique()}`
        yield* createTask(id)
        const append = (ifMatch: string) =>
          call("POST", `/tasks/${id}/events`, {
            body: { _tag: "Assigned", assignee: "ada" },
            headers: { "if-match": ifMatch }
          })
        for (const ifMatch of ['"abc"', "abc", "1", '"1", "abc"', '"1', "W/abc", ",", '"-1"']) {
          const body = problem(yield* append(ifMatch), 400, "InvalidIfMatch", ifMatch)
          assert.deepStrictEqual(
            (body.errors as ReadonlyArray<{ readonly path: ReadonlyArray<string> }>).map((e) => e.path),
            [["headers", "if-match"]],
            ifMatch
          )
        }
        for (const ifMatch of ['"2"', 'W/"1"', '"2", "3"']) {
          problem(yield* append(ifMatch), 412, "PreconditionFailed", ifMatch)
        }
        const matched = yield* append('"7", "1"')
        assert.strictEqual(matched.status, 201)
        const any = yield* call("POST", `/tasks/${id}/events`, {
          body: { _tag: "Scheduled", deadline: "soon" },
          headers: { "if-match": "*" }
        })
        assert.strictEqual(any.status, 201)
      })
    )

    it.effect("unknown paths are 404 and unsupported methods 405, as problems", () =>
      Effect.gen(function* () {
        const id = `routes-${unique()}`
        yield* createTask(id)
        for (const [method, path] of [
          ["GET", `/tasks/${id}/nothing`],
          ["POST", `/tasks/${id}/nothing/events`],
          ["GET", `/tasks/${id}/events/1/more`],
          ["DELETE", `/tasks/a/b/c`]
        ] as const) {
          const body = problem(yield* call(method, path), 404, "NoRoute", `${method} ${path}`)
          assert.strictEqual(body.method, method)
          assert.strictEqual(body.path, path)
        }
        for (const [method, path, allow] of [
          ["PUT", `/tasks/${id}`, "GET"],
          ["DELETE", `/tasks/${id}`, "GET"],
          ["PATCH", `/tasks/${id}/events`, "GET, POST"],
          ["PUT", `/tasks/${id}/events/1`, "GET"],
          ["DELETE", "/tasks", "GET, POST"],
          ["POST", "/tasks/graph", "GET"]
        ] as const) {
          const reply = yield* call(method, path, { body: { _tag: "Revised", description: "x" } })
          const body = problem(reply, 405, "MethodNotAllowed", `${method} ${path}`)
          assert.strictEqual(reply.headers.get("allow"), allow, `${method} ${path}`)
          assert.deepStrictEqual(body.allow, allow.split(", "))
        }
        // Nothing was changed by them.
        const events = yield* call("GET", `/tasks/${id}/events`)
        assert.strictEqual((events.body.items as ReadonlyArray<unknown>).length, 1)
      })
    )

    it.effect("a defect inside a request is a 500 problem that does not leak it", () =>
      Effect.gen(function* () {
        const reply = yield* call("GET", "/tasks/boom")
        const body = problem(reply, 500, "InternalError")
        assert.notInclude(reply.text, "boom")
        assert.isString(body.detail)
      })
    )
  }
)
