import { NodeHttpServer } from "@effect/platform-node"
import * as PgProjections from "@evently/postgres/PgProjections"
import * as PgSchema from "@evently/postgres/PgSchema"
import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import * as SqlClient from "effect/sql/SqlClient"
import { createServer } from "node:http"
import * as Explorer from "../src/Explorer.ts"
import * as Seed from "./seed.ts"

const token = "s3cret-token"

// Two explorers on one server: read-only at /explorer, with actions at /ops.
const Server = HttpRouter.serve(
  Layer.mergeAll(
    Explorer.layer({ machines: Seed.machines }),
    Explorer.layer({ path: "/ops", machines: Seed.machines, projections: { task_titles: Seed.TaskTitles }, token }),
    Explorer.layer({ path: "/named", hosts: ["ops.example.com"] })
  ),
  { disableLogger: true, disableListenLog: true }
).pipe(
  Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })),
  Layer.provideMerge(Seed.layer)
)

const call = (path: string, init: RequestInit = {}) =>
  Effect.gen(function* () {
    const server = yield* HttpServer.HttpServer
    const response = yield* Effect.promise(() => fetch(`${HttpServer.formatAddress(server.address)}${path}`, init))
    const text = yield* Effect.promise(() => response.text())
    return { status: response.status, headers: response.headers, body: text.startsWith("{") ? JSON.parse(text) : text }
  })

// The server's fibers sleep on the real clock (the tail polls), not on the test clock.
layer(Server, { excludeTestServices: true })("the explorer's API", (it) => {
  it.effect("counts the streams and events of each category", () =>
    Effect.gen(function* () {
      const { body } = yield* call("/explorer/api/categories")
      const byName = Object.fromEntries(body.items.map((c: { category: string }) => [c.category, c]))
      assert.deepStrictEqual(byName.task, { category: "task", streams: 2, events: 5 })
      assert.deepStrictEqual(byName.order, { category: "order", streams: 1, events: 2 })
      assert.deepStrictEqual(byName.log, { category: "log", streams: 1, events: 120 })
    })
  )

  it.effect("pages a stream newest first and oldest first, and a category's streams", () =>
    Effect.gen(function* () {
      const first = (yield* call("/explorer/api/stream?name=log-big&limit=50")).body
      assert.deepStrictEqual(first.items.map((e: { version: number }) => e.version).slice(0, 3), [120, 119, 118])
      assert.isTrue(first.more)
      const last = (yield* call("/explorer/api/stream?name=log-big&limit=50&from=21")).body
      assert.deepStrictEqual(
        last.items.map((e: { version: number }) => e.version),
        Array.from({ length: 20 }, (_, i) => 20 - i)
      )
      assert.isFalse(last.more)
      const asc = (yield* call("/explorer/api/stream?name=log-big&order=asc&from=118")).body
      assert.deepStrictEqual(
        asc.items.map((e: { data: { n: number } }) => e.data.n),
        [119, 120]
      )
      const newest = (yield* call("/explorer/api/categoryEvents?category=log&limit=100")).body
      assert.deepStrictEqual(newest.items.map((e: { version: number }) => e.version).slice(0, 2), [120, 119])
      assert.isTrue(newest.more)
      const older = (yield* call(`/explorer/api/categoryEvents?category=log&before=${newest.items[99].position}`)).body
      assert.deepStrictEqual(
        older.items.map((e: { version: number }) => e.version),
        Array.from({ length: 20 }, (_, i) => 20 - i)
      )
      assert.isFalse(older.more)
      const streams = (yield* call("/explorer/api/streams?category=task&limit=1")).body
      assert.deepStrictEqual(streams, { items: [{ stream: "task-1", category: "task", version: 4 }], more: true })
      const next = (yield* call("/explorer/api/streams?category=task&limit=1&after=task-1")).body
      assert.deepStrictEqual(next.items, [{ stream: "task-2", category: "task", version: 1 }])
    })
  )

  it.effect(
    "pages a stream of 100,000 events from either end through the (stream, version) index",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const t = yield* PgSchema.Tables
        yield* sql`insert into ${sql(t.events)} (stream, category, stream_version, event_id, event_type, data, recorded_at)
        select 'huge-1', 'huge', g, gen_random_uuid(), 'Ticked', jsonb_build_object('n', g), now()
        from generate_series(1, 100000) g`
        yield* sql`insert into ${sql(t.streams)} (stream, category, version) values ('huge-1', 'huge', 100000)`
        yield* sql`analyze ${sql(t.events)}`
        const started = performance.now()
        const deep = (yield* call("/explorer/api/stream?name=huge-1&from=51")).body
        const newest = (yield* call("/explorer/api/stream?name=huge-1")).body
        console.log(`two pages of a 100,000-event stream: ${(performance.now() - started).toFixed(0)} ms`)
        assert.deepStrictEqual(
          deep.items.map((e: { version: number }) => e.version),
          Array.from({ length: 50 }, (_, i) => 50 - i)
        )
        assert.strictEqual(newest.items[0].version, 100000)
        // The page's query, as ExplorerQueries.eventsPage writes it, is an index scan that stops after the page.
        const plan = yield* sql<{ "QUERY PLAN": string }>`explain select e.position from ${sql(t.events)} e
        where e.stream = 'huge-1' and e.stream_version < 51 order by e.stream_version desc limit 50`
        const text = plan.map((row) => row["QUERY PLAN"]).join("\n")
        assert.match(text, /Index Scan Backward using \S*stream_version_key/)
      }),
    // Inserting the 100,000 rows takes most of it: seconds on a loaded machine, past the 5 s default.
    60_000
  )

  it.effect("finds a stream, an event id, and a correlation id's chain across streams in log order", () =>
    Effect.gen(function* () {
      const byStream = (yield* call("/explorer/api/search?q=task-")).body
      assert.deepStrictEqual(
        byStream.streams.map((s: { stream: string }) => s.stream),
        ["task-1", "task-2"]
      )
      const byId = (yield* call(`/explorer/api/search?q=${Seed.ids.paymentTaken}`)).body
      assert.strictEqual(byId.event.stream, "payment-1")
      assert.strictEqual(byId.event.type, "PaymentTaken")
      const chain = (yield* call(`/explorer/api/search?q=${Seed.correlationId}`)).body.chain
      assert.deepStrictEqual(
        chain.map((e: { stream: string; type: string }) => `${e.stream} ${e.type}`),
        ["order-1 OrderPlaced", "payment-1 PaymentTaken", "order-1 OrderShipped"]
      )
      assert.strictEqual(chain[2].metadata.causationId, Seed.ids.paymentTaken)
    })
  )

  it.effect(
    "finds streams by a prefix of characters outside the BMP (an emoji is two UTF-16 units, one character)",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const t = yield* PgSchema.Tables
        yield* sql`insert into ${sql(t.streams)} (stream, category, version) values ('🎉party-1', '🎉party', 1)`
        const found = (yield* call(`/explorer/api/search?q=${encodeURIComponent("🎉")}`)).body
        assert.deepStrictEqual(
          found.streams.map((s: { stream: string }) => s.stream),
          ["🎉party-1"]
        )
      })
  )

  it.effect("reports subscriptions with their parked events, and a stream's path through its machine", () =>
    Effect.gen(function* () {
      const status = (yield* call("/explorer/api/subscriptions")).body
      const partition = status.partitions.find((p: { subscription: string }) => p.subscription === Seed.subscription)
      assert.strictEqual(partition.parked, 1)
      assert.strictEqual(status.history.length, 1)
      const parked = (yield* call(`/explorer/api/parked?subscription=${Seed.subscription}`)).body.items
      assert.strictEqual(parked[0].eventId, Seed.ids.orderPlaced)
      assert.include(parked[0].error, "SMTP refused")
      const machine = (yield* call("/explorer/api/machine?name=task&stream=task-1")).body
      assert.strictEqual(machine.path.current, "[Started]")
      assert.deepStrictEqual(machine.path.allowed, ["Paused", "Completed"])
      assert.isUndefined(machine.path.unmatched)
      const stream = (yield* call("/explorer/api/stream?name=task-1")).body
      assert.strictEqual(stream.machine, "task")
    })
  )

  it.effect("streams the tail as Server-Sent Events: the newest events, then each new one", () =>
    Effect.gen(function* () {
      const server = yield* HttpServer.HttpServer
      const response = yield* Effect.promise(() =>
        fetch(`${HttpServer.formatAddress(server.address)}/explorer/api/tail`)
      )
      assert.strictEqual(response.headers.get("content-type"), "text/event-stream")
      const reader = response.body!.getReader()
      const decoder = new TextDecoder()
      let text = ""
      const until = (found: (text: string) => boolean) =>
        Effect.promise(async () => {
          while (!found(text)) {
            const chunk = await reader.read()
            if (chunk.done) throw new Error(`the tail ended after: ${text}`)
            text += decoder.decode(chunk.value, { stream: true })
          }
        })
      yield* until((so) => so.includes("data: {"))
      const sql = yield* SqlClient.SqlClient
      const t = yield* PgSchema.Tables
      yield* sql`insert into ${sql(t.events)} (stream, category, stream_version, event_id, event_type, data, recorded_at)
        values ('task-3', 'task', 1, gen_random_uuid(), 'Created', '{"title":"live"}', now())`
      yield* until((so) => so.includes('"live"'))
      yield* Effect.promise(() => reader.cancel())
      assert.include(text, '"stream":"task-3"')
    })
  )

  it.effect("has no actions without a token, and with one refuses requests that do not carry it", () =>
    Effect.gen(function* () {
      const query = `subscription=${Seed.subscription}`
      assert.strictEqual((yield* call(`/explorer/api/parked/retry?${query}`, { method: "POST" })).status, 404)
      assert.isFalse((yield* call("/explorer/api/info")).body.actions)
      assert.isTrue((yield* call("/ops/api/info")).body.actions)
      const missing = yield* call(`/ops/api/parked/retry?${query}`, { method: "POST" })
      assert.strictEqual(missing.status, 401)
      const wrong = yield* call(`/ops/api/parked/drop?${query}`, {
        method: "POST",
        headers: { authorization: "Bearer not-it" }
      })
      assert.strictEqual(wrong.status, 401)
      assert.strictEqual((yield* call(`/ops/api/parked?${query}`)).body.items.length, 1)
      const rebase = yield* call(`/ops/api/rebase?subscription=nobody&to=end`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}` }
      })
      assert.strictEqual(rebase.status, 404)
      const retried = yield* call(`/ops/api/parked/retry?${query}`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}` }
      })
      assert.strictEqual(retried.status, 200)
      assert.strictEqual(retried.body.rewinds[0].retried.length, 1)
      assert.strictEqual((yield* call(`/ops/api/parked?${query}`)).body.items.length, 0)
    })
  )

  it.effect("starts a projection's rebuild in the background with the token, and it takes over", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const post = (query: string, bearer?: string) =>
        call(`/ops/api/rebuild?${query}`, {
          method: "POST",
          headers: bearer === undefined ? {} : { authorization: `Bearer ${bearer}` }
        })
      assert.strictEqual((yield* post("projection=task_titles")).status, 401)
      assert.strictEqual((yield* post("projection=nope", token)).status, 404)
      assert.deepStrictEqual((yield* call("/ops/api/info")).body.projections, ["task_titles"])
      const started = yield* post("projection=task_titles", token)
      assert.strictEqual(started.status, 202)
      const builds = yield* PgProjections.builds("task_titles").pipe(
        Effect.repeat({
          until: (all) => all.some((b) => b.state === "active"),
          schedule: Schedule.spaced("100 millis")
        })
      )
      assert.deepStrictEqual(
        builds.map((b) => `v${b.version}b${b.build} ${b.state}`),
        ["v1b1 active"]
      )
      const titles = yield* sql<{ stream: string; title: string }>`select stream, title from task_titles
        where stream in ('task-1', 'task-2') order by stream`
      assert.deepStrictEqual(
        titles.map((r) => `${r.stream}: ${r.title}`),
        ["task-1: write the explorer", "task-2: review it"]
      )
    })
  )

  it.effect("refuses bad parameters with what was wrong, and serves the page with a strict CSP", () =>
    Effect.gen(function* () {
      const bad = yield* call("/explorer/api/stream?name=log-big&order=sideways")
      assert.strictEqual(bad.status, 400)
      assert.include(bad.body.error, "'order' must be one of desc, asc")
      assert.strictEqual((yield* call("/explorer/api/stream?name=log-big&limit=0")).status, 400)
      assert.strictEqual((yield* call("/explorer/api/stream")).status, 400)
      assert.include((yield* call("/explorer/api/categoryEvents?category=log&before=x")).body.error, "'before'")
      assert.strictEqual((yield* call("/explorer/api/stream?name=nope-1")).status, 404)
      assert.strictEqual((yield* call("/explorer/api/machine?name=constructor")).status, 404)
      const page = yield* call("/explorer/")
      assert.strictEqual(page.status, 200)
      assert.include(page.headers.get("content-security-policy") ?? "", "script-src 'self'")
      assert.strictEqual((yield* call("/explorer/assets/..%2Fpackage.json")).status, 404)
    })
  )

  it.effect(
    "mounted on an application's server, answers only to the Host names it is given (loopback by default)",
    () =>
      Effect.gen(function* () {
        const server = yield* HttpServer.HttpServer
        const address = new URL(HttpServer.formatAddress(server.address))
        const status = (path: string, host: string) =>
          Effect.promise(
            () =>
              new Promise<number>((resolve, reject) => {
                import("node:http").then(({ request }) =>
                  request(new URL(path, address), { headers: { host } }, (res) => {
                    res.resume()
                    resolve(res.statusCode ?? 0)
                  })
                    .on("error", reject)
                    .end()
                )
              })
          )
        // A page of another site, its domain name pointed at this server (DNS rebinding), reads nothing.
        assert.strictEqual(yield* status("/explorer/api/categories", "rebind.attacker.example"), 421)
        assert.strictEqual(yield* status("/explorer/", "rebind.attacker.example"), 421)
        assert.strictEqual(yield* status("/explorer/api/categories", `localhost:${address.port}`), 200)
        assert.strictEqual(yield* status("/named/api/categories", "ops.example.com"), 200)
        assert.strictEqual(yield* status("/named/api/categories", `127.0.0.1:${address.port}`), 421)
      })
  )

  it.effect("answers 400, not 500, to positions beyond a bigint, NUL characters and malformed escapes", () =>
    Effect.gen(function* () {
      const huge = "9223372036854775808" // 2^63: 19 digits, one more than Postgres' bigint holds
      const before = yield* call(`/explorer/api/categoryEvents?category=log&before=${huge}`)
      assert.strictEqual(before.status, 400)
      assert.include(before.body.error, "'before' must be an integer from 0 to 9223372036854775807")
      const largest = yield* call("/explorer/api/categoryEvents?category=log&before=9223372036854775807&limit=1")
      assert.strictEqual(largest.status, 200)
      assert.strictEqual(largest.body.items[0].version, 120)
      const post = (path: string) => call(path, { method: "POST", headers: { authorization: `Bearer ${token}` } })
      assert.strictEqual((yield* post(`/ops/api/rebase?subscription=nobody&to=after&after=${huge}`)).status, 400)
      assert.strictEqual((yield* post(`/ops/api/parked/drop?subscription=nobody&id=${huge}`)).status, 400)
      for (const path of [
        "/explorer/api/stream?name=task%00",
        "/explorer/api/streams?category=task&after=task%00",
        "/explorer/api/search?q=a%00b",
        "/explorer/api/machine?name=task&stream=task-1%00",
        "/explorer/api/parked?subscription=%00"
      ]) {
        const answer = yield* call(path)
        assert.strictEqual(answer.status, 400, path)
        assert.include(answer.body.error, "NUL", path)
      }
      assert.strictEqual((yield* call("/explorer/assets/%E0%A4%A")).status, 404)
      assert.strictEqual((yield* call("/explorer/assets/explorer%2Ecss")).status, 200)
    })
  )

  it.effect("on its own server, listens on 127.0.0.1 by default and answers only to a loopback Host", () =>
    Effect.gen(function* () {
      const url = yield* Explorer.serve({ port: 0, token: "" })
      assert.strictEqual(url.hostname, "127.0.0.1")
      // An empty token enables nothing: no request could carry it.
      const info = yield* Effect.promise(() =>
        fetch(new URL("api/info", url)).then((r) => r.json() as Promise<{ actions: boolean }>)
      )
      assert.isFalse(info.actions)
      const drop = yield* Effect.promise(() =>
        fetch(new URL("api/parked/drop?subscription=x", url), { method: "POST", headers: { authorization: "Bearer " } })
      )
      assert.strictEqual(drop.status, 404)
      const ok = yield* Effect.promise(() => fetch(new URL("api/info", url)))
      assert.strictEqual(ok.status, 200)
      const withHost = (host: string) =>
        Effect.promise(
          () =>
            new Promise<number>((resolve, reject) => {
              import("node:http").then(({ request }) =>
                request(new URL("api/info", url), { headers: { host } }, (res) => {
                  res.resume()
                  resolve(res.statusCode ?? 0)
                })
                  .on("error", reject)
                  .end()
              )
            })
        )
      const rebound = yield* withHost("evil.example:80")
      assert.strictEqual(rebound, 421)
      // A name that merely starts like a loopback address is an attacker's DNS name, not a loopback address.
      assert.strictEqual(yield* withHost("127.evil.example:80"), 421)
      assert.strictEqual(yield* withHost("127.0.0.1.evil.example"), 421)
      assert.strictEqual(yield* withHost(`127.0.0.1:${url.port}`), 200)
      assert.strictEqual(yield* withHost(`localhost:${url.port}`), 200)
    }).pipe(Effect.scoped)
  )
})
