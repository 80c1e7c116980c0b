import { NodeHttpServer } from "@effect/platform-node"
import { ContainerApi } from "@evently/http"
import { PgEventStore, PgSchema, PgSubscriptions } from "@evently/postgres"
import { EventCodec } from "@evently/store"
import { TestDatabase } from "@evently/testing"
import { assert, layer } from "@effect/vitest"
import { Validator } from "@seriousme/openapi-schema-validator"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import * as SqlClient from "effect/sql/SqlClient"
import { createServer } from "node:http"
import { TaskEvent, TaskMachine } from "../../../examples/task-list/src/TaskMachine.ts"

const tasks = ContainerApi.make({
  name: "tasks",
  machine: TaskMachine,
  codec: EventCodec.make(TaskEvent),
  maxBodyBytes: 4096
})

// The same resources under another name, configured to require If-Match on appends.
const strict = ContainerApi.make({
  name: "chores",
  machine: TaskMachine,
  codec: EventCodec.make(TaskEvent),
  requireIfMatch: true,
  openapiPath: false,
  docsPath: false
})

const database = PgSchema.layerMigrate.pipe(Layer.orDie, Layer.provideMerge(TestDatabase.layer({ maxConnections: 12 })))
const stores = Layer.mergeAll(
  PgEventStore.layer(),
  PgSubscriptions.layer({ lockRetryInterval: "100 millis", reconnectDelay: "100 millis" })
).pipe(Layer.provideMerge(database))

// Both container types on one server; `tasks` last, so the `Index` in context is that of `tasks`.
const Server = HttpRouter.serve(Layer.mergeAll(strict.routes, tasks.routes), {
  disableLogger: true,
  disableListenLog: true
}).pipe(Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })))

/** A JSON reply as the test reads it: the members of containers, pages, events, problems and graphs it looks at. */
interface Body {
  readonly [member: string]: unknown
  readonly id: string
  readonly tag: string
  readonly status: number
  readonly detail: string
  readonly state: ReadonlyArray<string>
  readonly version: number
  readonly type: string
  readonly data: unknown
  readonly actual: number
  readonly limit: number
  readonly allowed: ReadonlyArray<string>
  readonly next: number | string | undefined
  readonly items: ReadonlyArray<Body>
  readonly errors: ReadonlyArray<{ readonly path: ReadonlyArray<string | number>; readonly message: string }>
  readonly transitions: ReadonlyArray<{ readonly from: string; readonly event: string; readonly to: string }>
  readonly initialEventTypes: ReadonlyArray<string>
  readonly terminalEventTypes: ReadonlyArray<string>
  readonly mermaid: string
  readonly position: string
  readonly recordedAt: string
  readonly eventId: string
  readonly metadata: { readonly causationId?: string }
  readonly openapi: string
  readonly paths: Record<string, Record<string, { readonly responses: Record<string, { content: object }> }>>
}

interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  readonly body: Body
}

/** One HTTP request to the server under test, over a real socket. `body` is sent as is when it is a string. */
const call = (
  method: string,
  path: string,
  options: { readonly body?: unknown; readonly headers?: Record<string, string> } = {}
) =>
  Effect.gen(function* () {
    const server = yield* HttpServer.HttpServer
    const base = HttpServer.formatAddress(server.address)
    const body =
      options.body === undefined
        ? undefined
        : typeof options.body === "string"
          ? options.body
          : JSON.stringify(options.body)
    const response = yield* Effect.promise(() =>
      fetch(`${base}${path}`, {
        method,
        headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...options.headers },
        ...(body === undefined ? {} : { body })
      })
    )
    const text = yield* Effect.promise(() => response.text())
    const type = response.headers.get("content-type") ?? ""
    const parsed: unknown = type.includes("json") && text !== "" ? JSON.parse(text) : undefined
    return { status: response.status, headers: response.headers, text, body: parsed as Body } satisfies Reply
  })

const versions = (reply: Reply) => reply.body.items.map((e) => e.version)

const create = (description: string, headers?: Record<string, string>) =>
  call("POST", "/tasks", { body: { _tag: "Created", description }, ...(headers === undefined ? {} : { headers }) })

layer(Server.pipe(Layer.provideMerge(stores)), { excludeTestServices: true })("ContainerApi", (it) => {
  it.effect("the whole task story over HTTP", () =>
    Effect.gen(function* () {
      const created = yield* create("Write the report")
      assert.strictEqual(created.status, 201)
      const id: string = created.body.id
      assert.match(id, /^[0-9a-f-]{36}$/)
      assert.strictEqual(created.headers.get("location"), `/tasks/${id}`)
      assert.strictEqual(created.headers.get("etag"), '"1"')
      assert.deepStrictEqual<unknown>(created.body, {
        id,
        state: ["Created"],
        version: 1,
        revision: 1,
        data: { description: "Write the report" },
        allowed: ["Assigned", "Scheduled", "Revised"]
      })

      const assigned = yield* call("POST", `/tasks/${id}/events`, { body: { _tag: "Assigned", assignee: "ada" } })
      assert.strictEqual(assigned.status, 201)
      assert.deepStrictEqual(assigned.body.state, ["Created", "Assigned"])
      const scheduled = yield* call("POST", `/tasks/${id}/events`, {
        body: { _tag: "Scheduled", deadline: "2030-03-31" }
      })
      assert.strictEqual(scheduled.headers.get("etag"), '"3"')

      const early = yield* call("POST", `/tasks/${id}/events`, { body: { _tag: "Completed" } })
      assert.strictEqual(early.status, 409)
      assert.strictEqual(early.headers.get("content-type"), "application/problem+json")
      assert.strictEqual(early.body.tag, "IllegalTransition")
      assert.strictEqual(early.body.status, 409)
      assert.deepStrictEqual(early.body.state, ["Created", "Assigned", "Scheduled"])
      assert.deepStrictEqual(early.body.allowed, ["Started", "Revised"])
      assert.strictEqual(early.body.detail, "Event type 'Completed' may not follow [Created, Assigned, Scheduled]")

      const started = yield* call("POST", `/tasks/${id}/events`, {
        body: { _tag: "Started" },
        headers: { "if-match": '"3"' }
      })
      assert.strictEqual(started.status, 201)
      assert.deepStrictEqual(started.body.state, ["Started"])
      const completed = yield* call("POST", `/tasks/${id}/events`, { body: { _tag: "Completed" } })
      assert.deepStrictEqual(completed.body.state, ["Completed"])
      assert.deepStrictEqual(completed.body.allowed, [])

      const got = yield* call("GET", `/tasks/${id}`)
      assert.strictEqual(got.status, 200)
      assert.strictEqual(got.headers.get("etag"), '"5"')
      assert.deepStrictEqual(got.body.data, {
        description: "Write the report",
        assignee: "ada",
        deadline: "2030-03-31"
      })
      const unchanged = yield* call("GET", `/tasks/${id}`, { headers: { "if-none-match": '"5"' } })
      assert.strictEqual(unchanged.status, 304)
      assert.strictEqual(unchanged.text, "")
      const changed = yield* call("GET", `/tasks/${id}`, { headers: { "if-none-match": '"4"' } })
      assert.strictEqual(changed.status, 200)

      const events = yield* call("GET", `/tasks/${id}/events`)
      assert.deepStrictEqual(
        events.body.items.map((e) => [e.version, e.type]),
        [
          [1, "Created"],
          [2, "Assigned"],
          [3, "Scheduled"],
          [4, "Started"],
          [5, "Completed"]
        ]
      )
      const first = events.body.items[0]
      assert.deepStrictEqual(first.data, { description: "Write the report" })
      assert.match(first.position, /^\d+$/)
      assert.strictEqual(new Date(first.recordedAt).toISOString(), first.recordedAt)
      assert.match(first.eventId, /^[0-9a-f-]{36}$/)
      assert.isString(first.metadata.causationId)

      const one = yield* call("GET", `/tasks/${id}/events/4`)
      assert.deepStrictEqual([one.body.version, one.body.type], [4, "Started"])
      const none = yield* call("GET", `/tasks/${id}/events/6`)
      assert.strictEqual(none.status, 404)
      assert.strictEqual(none.body.tag, "NotFound")
    })
  )

  it.effect("pages events oldest-first and newest-first", () =>
    Effect.gen(function* () {
      const id = (yield* create("Paging")).body.id as string
      yield* call("POST", `/tasks/${id}/events`, { body: { _tag: "Assigned", assignee: "ada" } })
      yield* call("POST", `/tasks/${id}/events`, { body: { _tag: "Scheduled", deadline: "soon" } })
      yield* call("POST", `/tasks/${id}/events`, { body: { _tag: "Started" } })
      yield* call("POST", `/tasks/${id}/events`, { body: { _tag: "Reassigned", assignee: "grace" } })
      const page1 = yield* call("GET", `/tasks/${id}/events?limit=2`)
      assert.deepStrictEqual([versions(page1), page1.body.next], [[1, 2], 2])
      const page2 = yield* call("GET", `/tasks/${id}/events?limit=2&after=2`)
      assert.deepStrictEqual([versions(page2), page2.body.next], [[3, 4], 4])
      const page3 = yield* call("GET", `/tasks/${id}/events?limit=2&after=4`)
      assert.deepStrictEqual([versions(page3), page3.body.next], [[5], undefined])
      const back1 = yield* call("GET", `/tasks/${id}/events?limit=2&order=desc`)
      assert.deepStrictEqual([versions(back1), back1.body.next], [[5, 4], 4])
      const back2 = yield* call("GET", `/tasks/${id}/events?limit=3&order=desc&after=4`)
      assert.deepStrictEqual([versions(back2), back2.body.next], [[3, 2, 1], undefined])
      const unknown = yield* call("GET", `/tasks/no-such-task/events`)
      assert.strictEqual(unknown.status, 404)
      const badOrder = yield* call("GET", `/tasks/${id}/events?order=sideways&limit=0`)
      assert.strictEqual(badOrder.status, 400)
      assert.deepStrictEqual(badOrder.body.errors.map((e) => e.path.join(".")).sort(), ["query.limit", "query.order"])
    })
  )

  it.effect("two clients racing with the same If-Match: one 201, one 412", () =>
    Effect.gen(function* () {
      const id = (yield* create("Race")).body.id as string
      const replies = yield* Effect.all(
        [
          call("POST", `/tasks/${id}/events`, {
            body: { _tag: "Assigned", assignee: "ada" },
            headers: { "if-match": '"1"' }
          }),
          call("POST", `/tasks/${id}/events`, {
            body: { _tag: "Scheduled", deadline: "x" },
            headers: { "if-match": '"1"' }
          })
        ],
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(replies.map((r) => r.status).sort(), [201, 412])
      const failed = replies.find((r) => r.status === 412)!
      assert.strictEqual(failed.body.tag, "PreconditionFailed")
      assert.strictEqual(failed.body.actual, 2)
      const got = yield* call("GET", `/tasks/${id}`)
      assert.strictEqual(got.body.version, 2)
      const stale = yield* call("POST", `/tasks/${id}/events`, {
        body: { _tag: "Revised", description: "y" },
        headers: { "if-match": '"1"' }
      })
      assert.strictEqual(stale.status, 412)
    })
  )

  it.effect("a duplicate Idempotency-Key returns the first response again", () =>
    Effect.gen(function* () {
      const first = yield* create("Once", { "idempotency-key": "create-once" })
      const again = yield* create("Once", { "idempotency-key": "create-once" })
      assert.strictEqual(again.status, 201)
      assert.deepStrictEqual(again.body, first.body)
      assert.strictEqual(again.headers.get("location"), first.headers.get("location"))
      const id = first.body.id as string
      const append = () =>
        call("POST", `/tasks/${id}/events`, {
          body: { _tag: "Assigned", assignee: "ada" },
          headers: { "idempotency-key": "assign-1" }
        })
      const a = yield* append()
      yield* call("POST", `/tasks/${id}/events`, { body: { _tag: "Scheduled", deadline: "x" } })
      const b = yield* append()
      assert.deepStrictEqual([a.status, b.status], [201, 201])
      assert.deepStrictEqual(b.body, a.body)
      assert.strictEqual(b.headers.get("etag"), '"2"')
      const events = yield* call("GET", `/tasks/${id}/events`)
      assert.deepStrictEqual(
        events.body.items.map((e) => e.type),
        ["Created", "Assigned", "Scheduled"]
      )
    })
  )

  it.effect("bad requests: malformed JSON, wrong types, unknown _tag, missing field, oversized body", () =>
    Effect.gen(function* () {
      const malformed = yield* call("POST", "/tasks", { body: '{"_tag": "Created", ' })
      assert.strictEqual(malformed.status, 400)
      assert.strictEqual(malformed.headers.get("content-type"), "application/problem+json")
      assert.strictEqual(malformed.body.tag, "SchemaError")

      const wrongType = yield* call("POST", "/tasks", { body: { _tag: "Created", description: 42 } })
      assert.strictEqual(wrongType.status, 400)
      assert.deepStrictEqual(
        wrongType.body.errors.map((e) => e.path.join(".")),
        ["payload.description"]
      )
      const unknownTag = yield* call("POST", "/tasks", { body: { _tag: "Exploded" } })
      assert.strictEqual(unknownTag.status, 400)
      // The event union names every event type it accepts.
      assert.deepStrictEqual(unknownTag.body.errors[0].path, ["payload", "_tag"])
      assert.include(unknownTag.body.errors[0].message, "unknown type 'Exploded'; expected one of Created, ")
      assert.notInclude(unknownTag.body.errors[0].message, '"_tag": "Created"')

      const id = (yield* create("Strict fields")).body.id as string
      const missing = yield* call("POST", `/tasks/${id}/events`, { body: { _tag: "Assigned" } })
      assert.strictEqual(missing.status, 400)
      assert.deepStrictEqual(missing.body.errors[0].path, ["payload", "assignee"])

      const notInitial = yield* call("POST", "/tasks", { body: { _tag: "Started" } })
      assert.strictEqual(notInitial.status, 409)
      assert.strictEqual(notInitial.body.detail, "Event type 'Started' may not be initial")

      const huge = yield* call("POST", "/tasks", { body: { _tag: "Created", description: "x".repeat(5000) } })
      assert.strictEqual(huge.status, 413)
      assert.strictEqual(huge.body.tag, "PayloadTooLarge")
      assert.strictEqual(huge.body.limit, 4096)

      const unknownTask = yield* call("POST", "/tasks/nobody/events", { body: { _tag: "Started" } })
      assert.strictEqual(unknownTask.status, 404)
      const unknownGet = yield* call("GET", "/tasks/nobody")
      assert.deepStrictEqual([unknownGet.status, unknownGet.body.tag], [404, "NotFound"])
    })
  )

  it.effect("ids that could be paths are refused before any store call", () =>
    Effect.gen(function* () {
      for (const path of [
        "/tasks/..%2F..%2Fetc",
        "/tasks/a%00b",
        "/tasks/..",
        `/tasks/${"a".repeat(129)}`,
        "/tasks/a.b"
      ]) {
        const reply = yield* call("GET", path)
        assert.oneOf(reply.status, [400, 404], path)
        if (reply.status === 400) assert.strictEqual(reply.body.errors[0].path.join("."), "params.id", path)
      }
      const slash = yield* call("POST", "/tasks/a/b/events", { body: { _tag: "Started" } })
      assert.strictEqual(slash.status, 404)
      const traversal = yield* call("POST", "/tasks/..%2Fx/events", { body: { _tag: "Started" } })
      assert.strictEqual(traversal.status, 400)
      const clientId = yield* call("POST", "/tasks?id=..%2Fx", { body: { _tag: "Created", description: "x" } })
      assert.strictEqual(clientId.status, 400)
      assert.deepStrictEqual(clientId.body.errors[0].path, ["query", "id"])
    })
  )

  it.effect("the log is immutable: no PUT, PATCH or DELETE", () =>
    Effect.gen(function* () {
      const id = (yield* create("Immutable")).body.id as string
      for (const method of ["PUT", "PATCH", "DELETE"]) {
        for (const path of [`/tasks/${id}/events/1`, `/tasks/${id}/events`, `/tasks/${id}`]) {
          const reply = yield* call(method, path, { body: { _tag: "Revised", description: "hacked" } })
          assert.oneOf(reply.status, [404, 405], `${method} ${path}`)
        }
      }
      const events = yield* call("GET", `/tasks/${id}/events`)
      assert.deepStrictEqual(events.body.items.length, 1)
      assert.deepStrictEqual(events.body.items[0].data, { description: "Immutable" })
    })
  )

  it.effect("a client-supplied id, an existing id, and If-Match required when configured", () =>
    Effect.gen(function* () {
      const mine = yield* call("POST", "/tasks?id=my-task", { body: { _tag: "Created", description: "Mine" } })
      assert.deepStrictEqual(
        [mine.status, mine.body.id, mine.headers.get("location")],
        [201, "my-task", "/tasks/my-task"]
      )
      const again = yield* call("POST", "/tasks?id=my-task", { body: { _tag: "Created", description: "Mine" } })
      assert.deepStrictEqual([again.status, again.body.tag], [409, "AlreadyExists"])

      const chore = yield* call("POST", "/chores", { body: { _tag: "Created", description: "Dishes" } })
      assert.strictEqual(chore.status, 201)
      const unconditional = yield* call("POST", `/chores/${chore.body.id}/events`, {
        body: { _tag: "Assigned", assignee: "ada" }
      })
      assert.deepStrictEqual([unconditional.status, unconditional.body.tag], [428, "PreconditionRequired"])
      const conditional = yield* call("POST", `/chores/${chore.body.id}/events`, {
        body: { _tag: "Assigned", assignee: "ada" },
        headers: { "if-match": chore.headers.get("etag")! }
      })
      assert.strictEqual(conditional.status, 201)
    })
  )

  it.effect("GET /tasks lists the index, filtered by control state and paged", () =>
    Effect.gen(function* () {
      const index = yield* ContainerApi.Index
      const ids: Array<string> = []
      for (const name of ["l-a", "l-b", "l-c"]) {
        ids.push((yield* call("POST", `/tasks?id=${name}`, { body: { _tag: "Created", description: name } })).body.id)
      }
      yield* call("POST", "/tasks/l-b/events", { body: { _tag: "Assigned", assignee: "ada" } })
      yield* index.waitUntilCaughtUp()
      const assigned = yield* call("GET", "/tasks?state=Assigned")
      assert.deepStrictEqual(
        assigned.body.items.filter((e) => e.id.startsWith("l-")).map((e) => [e.id, e.state, e.version]),
        [["l-b", ["Created", "Assigned"], 2]]
      )
      const page1 = yield* call("GET", "/tasks?limit=2&after=l-")
      assert.deepStrictEqual(
        page1.body.items.map((e) => e.id),
        ["l-a", "l-b"]
      )
      assert.strictEqual(page1.body.next, "l-b")
      const page2 = yield* call("GET", `/tasks?limit=2&after=${page1.body.next}`)
      assert.strictEqual(page2.body.items[0].id, "l-c")
      // The index is durable: a row per container in its own table, kept by a subscription with a stable name, so a
      // restart goes on from its checkpoint instead of replaying the category.
      const sql = yield* SqlClient.SqlClient
      const rows = yield* sql<{ id: string; tags: ReadonlyArray<string>; version: number }>`
        select id, tags, version from evently_container_index where category = 'task' and id like 'l-%' order by id`
      assert.deepStrictEqual(
        rows.map((row) => [row.id, [...row.tags], row.version]),
        [
          ["l-a", ["Created"], 1],
          ["l-b", ["Created", "Assigned"], 2],
          ["l-c", ["Created"], 1]
        ]
      )
      assert.strictEqual(index.subscription, "http-index-task")
      const checkpoints = yield* sql<{ subscription: string }>`
        select subscription from evently_checkpoints where subscription = ${index.subscription}`
      assert.strictEqual(checkpoints.length, 1)
    })
  )

  it.effect("an unknown event type is named, with the types there are, not the union's dump", () =>
    Effect.gen(function* () {
      const reply = yield* call("POST", "/tasks", { body: { _tag: "Exploded", description: "x" } })
      assert.strictEqual(reply.status, 400)
      assert.strictEqual(reply.body.tag, "UnknownType")
      assert.deepStrictEqual(reply.body.errors, [
        {
          path: ["payload", "_tag"],
          message:
            "unknown type 'Exploded'; expected one of Created, Assigned, Scheduled, Started, Reassigned, Rescheduled, " +
            "Revised, Canceled, Completed"
        }
      ])
    })
  )

  it.effect("the graph as JSON and as Mermaid text", () =>
    Effect.gen(function* () {
      const graph = yield* call("GET", "/tasks/graph")
      assert.strictEqual(graph.status, 200)
      assert.deepStrictEqual(graph.body.initialEventTypes, ["Created"])
      assert.deepStrictEqual([...graph.body.terminalEventTypes].sort(), ["Canceled", "Completed"])
      assert.isTrue(graph.body.transitions.some((t) => t.from === "*" && t.event === "Created" && t.to === "[Created]"))
      const mermaid = yield* call("GET", "/tasks/graph?format=mermaid")
      assert.strictEqual(mermaid.headers.get("content-type")?.split(";")[0], "text/plain")
      assert.isTrue(mermaid.text.startsWith("stateDiagram-v2"))
      assert.strictEqual(mermaid.text, graph.body.mermaid)
    })
  )

  it.effect("the OpenAPI document is valid OpenAPI 3.1 and describes the resources", () =>
    Effect.gen(function* () {
      const reply = yield* call("GET", "/openapi.json")
      assert.strictEqual(reply.status, 200)
      const document = reply.body
      assert.match(document.openapi, /^3\.1\.\d+$/)
      const result = yield* Effect.promise(() => new Validator().validate(document))
      assert.deepStrictEqual(result.errors, undefined)
      assert.isTrue(result.valid)
      assert.hasAllKeys(document.paths, [
        "/tasks",
        "/tasks/graph",
        "/tasks/{id}",
        "/tasks/{id}/events",
        "/tasks/{id}/events/{n}"
      ])
      const append = document.paths["/tasks/{id}/events"].post
      assert.includeMembers(Object.keys(append.responses), ["201", "400", "404", "409", "412", "413", "428"])
      assert.property(append.responses["412"].content, "application/problem+json")
      // Create takes no If-Match: neither 412 nor 428 is listed for it.
      const created = document.paths["/tasks"].post
      assert.notIncludeMembers(Object.keys(created.responses), ["412", "428"])
      assert.includeMembers(Object.keys(created.responses), ["201", "409", "422"])
      assert.notProperty(document.paths["/tasks/{id}/events/{n}"], "put")
      const docs = yield* call("GET", "/docs")
      assert.strictEqual(docs.status, 200)
      assert.include(docs.text, "<html")
    })
  )
})
