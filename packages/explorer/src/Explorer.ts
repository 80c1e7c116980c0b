/**
 * The explorer: a web page to look at an evently system on Postgres, served as a route group of an `@evently/http`
 * server (or on its own with {@link serve}). Its pages show the categories with their stream and event counts, a
 * stream's events page by page (newest or oldest first, data and metadata as folded JSON), a search by stream name,
 * event id or correlation id (the whole causal chain across streams, in log order), the subscriptions and
 * projections with checkpoint, lag (and a small chart of it), active worker and parked events with their errors, a
 * machine's diagram with one stream's path through it, and the log's tail, live over Server-Sent Events.
 *
 * It is read-only unless given a `token`: then retrying or dropping a parked event and rebasing a subscription exist,
 * and each such request must carry `Authorization: Bearer <token>`. Event data is user input: the page only ever puts
 * it into the document as text, and its Content-Security-Policy allows no inline script.
 *
 * Mount it with `HttpRouter.serve(Layer.mergeAll(apiRoutes, Explorer.layer({ machines })))` on a server bound to
 * 127.0.0.1 (docs/explorer.md has the whole program), or run it alone with {@link serve}.
 *
 * @since 0.1.0
 */
import type * as Graph from "@evently/machine/Graph"
import * as PgOperations from "@evently/postgres/PgOperations"
import * as PgProjections from "@evently/postgres/PgProjections"
import * as PgSubscriptions from "@evently/postgres/PgSubscriptions"
import type * as Projection from "@evently/store/Projection"
import * as Subscriptions from "@evently/store/Subscriptions"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as FiberMap from "effect/FiberMap"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as HttpRouter from "effect/http/HttpRouter"
import type * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import type * as SqlClient from "effect/sql/SqlClient"
import * as ExplorerQueries from "./ExplorerQueries.ts"
import * as Assets from "./internal/assets.ts"
import * as Host from "./internal/host.ts"
import * as LagHistory from "./internal/lagHistory.ts"
import * as NodeServer from "./internal/nodeServer.ts"
import * as Respond from "./internal/respond.ts"
import * as Tail from "./internal/tail.ts"
import * as Token from "./internal/token.ts"
import * as MachinePath from "./MachinePath.ts"

/**
 * A machine as the explorer draws it: its graph. `EventlyConfig.machine(m)` of `@evently/cli` is one, so a config
 * module's `machines` can be passed as they are.
 *
 * @since 0.1.0
 * @category models
 */
export interface MachineEntry {
  readonly graph: Graph.Graph<string>
}

/**
 * Options of {@link layer}: `path`, where the page lives (default `/explorer`; the API is under `<path>/api`),
 * `machines` by name (a stream's machine is the one named like its category, or the one the page picks),
 * `projections` by name (table projections whose handlers use only the `SqlClient`, as a config module's are: the
 * page can start their rebuild), `token`, which enables the actions (an empty one does not) and must then come with
 * each of them, `tailInterval`, how often the live tail looks for new events (default 500 ms), and `hosts`, the names
 * a request's `Host` may be: by default `localhost`, `[::1]` and 127.x.y.z only, so that a page of another site
 * cannot read the log by pointing its own domain name at your server (DNS rebinding); list the names your server is
 * reached by (`["ops.example.com"]`), or `"any"` when something in front of it checks them.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly path?: `/${string}` | undefined
  readonly machines?: { readonly [name: string]: MachineEntry } | undefined
  readonly projections?: { readonly [name: string]: Projection.Projection<unknown, unknown> } | undefined
  readonly token?: string | undefined
  readonly tailInterval?: number | undefined
  readonly hosts?: ReadonlyArray<string> | "any" | undefined
}

/**
 * The address a standalone explorer listens on unless told otherwise: this machine only.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultHost = "127.0.0.1"

// An empty token is no token: no request could carry it (`Authorization: Bearer ` has none), so the page would offer
// actions that always fail.
const tokenOf = (options: Options): string | undefined =>
  options.token === undefined || options.token === "" ? undefined : options.token

type Handler = (
  request: HttpServerRequest.HttpServerRequest
) => Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, SqlClient.SqlClient>

const paged = <A>(items: ReadonlyArray<A>, limit: number) => ({ items, more: items.length === limit })

type Machines = NonNullable<Options["machines"]>

// The pages over the log: categories, streams, events, search.
const browse = (options: Options): Record<string, Handler> => ({
  info: () =>
    Effect.succeed(
      Respond.json({
        actions: tokenOf(options) !== undefined,
        machines: Object.keys(options.machines ?? {}).sort(),
        projections: Object.keys(options.projections ?? {}).sort()
      })
    ),
  categories: () => Effect.map(ExplorerQueries.categories(), (items) => Respond.json({ items })),
  streams: Effect.fnUntraced(function* (request) {
    const q = Respond.query(request)
    const limit = (yield* Respond.integer(q, "limit", { min: 1, max: 500 })) ?? 50
    const category = yield* Respond.text(q, "category")
    const after = yield* Respond.optionalText(q, "after")
    return Respond.json(paged(yield* ExplorerQueries.streamsPage({ category, after, limit }), limit))
  }),
  categoryEvents: Effect.fnUntraced(function* (request) {
    const q = Respond.query(request)
    const category = yield* Respond.text(q, "category")
    const before = yield* Respond.bigint(q, "before")
    const limit = (yield* Respond.integer(q, "limit", { min: 1, max: 500 })) ?? 50
    const events = yield* ExplorerQueries.categoryEventsPage({ category, before, limit })
    return Respond.json(paged(events, limit))
  }),
  stream: Effect.fnUntraced(function* (request) {
    const machines = options.machines ?? {}
    const q = Respond.query(request)
    const name = yield* Respond.text(q, "name")
    const order = yield* Respond.choice(q, "order", ["desc", "asc"])
    const from = yield* Respond.integer(q, "from", { min: 0, max: 2_147_483_647 })
    const limit = (yield* Respond.integer(q, "limit", { min: 1, max: 500 })) ?? 50
    const stream = yield* ExplorerQueries.stream(name)
    if (stream === undefined) return yield* new Respond.Refused({ status: 404, reason: `No stream '${name}'` })
    const events = yield* ExplorerQueries.eventsPage({ stream: name, order, from, limit })
    const machine = Object.hasOwn(machines, stream.category) ? stream.category : undefined
    return Respond.json({ stream, order, machine, ...paged(events, limit) })
  }),
  search: Effect.fnUntraced(function* (request) {
    const text = (yield* Respond.text(Respond.query(request), "q")).trim()
    return Respond.json(yield* ExplorerQueries.search(text))
  })
})

const machineNamed = (machines: Machines, name: string) => {
  const entry = Object.hasOwn(machines, name) ? machines[name] : undefined
  return entry === undefined
    ? Effect.fail(new Respond.Refused({ status: 404, reason: `No machine '${name}'` }))
    : Effect.succeed(entry)
}

// The pages over what reads the log and what it means: consumers, machines, the live tail.
const watch = (machines: Machines, tailInterval: number, history: LagHistory.LagHistory): Record<string, Handler> => ({
  subscriptions: Effect.fnUntraced(function* () {
    const report = yield* PgOperations.status
    yield* history.record(yield* Clock.currentTimeMillis, report.partitions)
    return Respond.json({ ...report, history: yield* history.samples })
  }),
  parked: Effect.fnUntraced(function* (request) {
    const name = yield* Respond.text(Respond.query(request), "subscription")
    return Respond.json({ subscription: name, items: yield* PgOperations.parked(name) })
  }),
  machine: Effect.fnUntraced(function* (request) {
    const q = Respond.query(request)
    const name = yield* Respond.text(q, "name")
    const { graph } = yield* machineNamed(machines, name)
    const stream = yield* Respond.optionalText(q, "stream")
    const path = stream === undefined ? undefined : MachinePath.follow(graph, yield* ExplorerQueries.eventTypes(stream))
    return Respond.json({ name, graph, stream, path })
  }),
  tail: Effect.fnUntraced(function* () {
    const messages = Tail.messages({ initial: 20, interval: tailInterval })
    const context = yield* Effect.context<SqlClient.SqlClient>()
    const body = messages.pipe(
      Stream.catchCause((cause) =>
        Cause.hasInterruptsOnly(cause)
          ? Stream.failCause(cause)
          : Stream.fromEffect(
              Effect.as(Effect.logError("Explorer: the tail failed", cause), "event: failed\ndata: {}\n\n")
            )
      ),
      Stream.encodeText,
      Stream.provideContext(context)
    )
    return HttpServerResponse.stream(body, {
      contentType: "text/event-stream",
      headers: { ...Respond.baseHeaders, "x-accel-buffering": "no" }
    })
  })
})

const positionOf = (q: URLSearchParams, name: string) =>
  Effect.flatMap(Respond.bigint(q, name), (position) =>
    position === undefined
      ? Effect.fail(new Respond.Refused({ status: 400, reason: `'${name}' needs a position` }))
      : Effect.succeed(position)
  )

const ids = (q: URLSearchParams) => Effect.map(Respond.bigint(q, "id"), (id) => (id === undefined ? undefined : [id]))

// Starts a projection's rebuild in the background (one at a time per projection) and answers 202 at once: the
// rebuild takes as long as the log is long, and shows on the subscriptions page while it runs.
const rebuild =
  (projections: NonNullable<Options["projections"]>, running: FiberMap.FiberMap<string>): Handler =>
  (request) =>
    Effect.gen(function* () {
      const name = yield* Respond.text(Respond.query(request), "projection")
      const projection = Object.hasOwn(projections, name) ? projections[name] : undefined
      if (projection === undefined)
        return yield* new Respond.Refused({ status: 404, reason: `No projection '${name}'` })
      if (yield* FiberMap.has(running, name)) {
        return yield* new Respond.Refused({ status: 409, reason: `Projection '${name}' is being rebuilt already` })
      }
      const context = yield* Effect.context<SqlClient.SqlClient>()
      // A config module's projection: its handlers use only the SqlClient.
      const build = PgProjections.rebuild(projection as Projection.Projection<unknown, never>).pipe(
        Effect.provide(PgSubscriptions.layer()),
        Effect.provideContext(context),
        Effect.tapCause((cause) => Effect.logError(`Explorer: the rebuild of '${name}' failed`, cause))
      )
      yield* FiberMap.run(running, name, build, { onlyIfMissing: true })
      return Respond.json({ projection: name, rebuilding: true }, 202)
    })

const actions = (token: string) => {
  const authorized =
    (handler: Handler): Handler =>
    (request) =>
      Token.carries(request, token)
        ? handler(request)
        : Effect.fail(
            new Respond.Refused({
              status: 401,
              reason: "This action needs the explorer's token (Authorization: Bearer)"
            })
          )
  return {
    authorized,
    retry: authorized(
      Effect.fnUntraced(function* (request) {
        const q = Respond.query(request)
        const name = yield* Respond.text(q, "subscription")
        return Respond.json({ rewinds: yield* PgOperations.retryParked(name, yield* ids(q)) })
      })
    ),
    drop: authorized(
      Effect.fnUntraced(function* (request) {
        const q = Respond.query(request)
        const name = yield* Respond.text(q, "subscription")
        return Respond.json({ dropped: yield* PgOperations.dropParked(name, yield* ids(q)) })
      })
    ),
    rebase: authorized(
      Effect.fnUntraced(function* (request) {
        const q = Respond.query(request)
        const name = yield* Respond.text(q, "subscription")
        const to = yield* Respond.choice(q, "to", ["end", "beginning", "after"])
        const start =
          to === "end"
            ? Subscriptions.End
            : to === "beginning"
              ? Subscriptions.Beginning
              : Subscriptions.After(yield* positionOf(q, "after"))
        yield* PgSubscriptions.rebase(name, start).pipe(
          Effect.catchTag("UnknownSubscription", () =>
            Effect.fail(new Respond.Refused({ status: 404, reason: `No subscription '${name}'` }))
          )
        )
        return Respond.json({ subscription: name, rebased: to })
      })
    )
  }
}

/**
 * Adds the explorer's page and API under `options.path` (default `/explorer`) to the server's router. The database
 * is the `SqlClient` where the layer is built (the table names of `PgSchema.Tables`, as the application's).
 *
 * Routes: `GET <path>/` (the page), `GET <path>/assets/<file>`, and under `<path>/api`: `info`, `categories`,
 * `streams?category=&after=&limit=`, `categoryEvents?category=&before=&limit=`,
 * `stream?name=&order=asc|desc&from=&limit=`, `search?q=`, `subscriptions`,
 * `parked?subscription=`, `machine?name=&stream=`, `tail` (SSE); with a token, `POST` `parked/retry` and
 * `parked/drop` (`?subscription=&id=`, all of the subscription's without `id`), `rebase`
 * (`?subscription=&to=end|beginning|after&after=`) and `rebuild` (`?projection=`: starts a blue/green rebuild in this
 * process, answers 202).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<never, never, HttpRouter.HttpRouter | SqlClient.SqlClient> =>
  Layer.effectDiscard(
    Effect.gen(function* () {
      const router = yield* HttpRouter.HttpRouter
      const context = yield* Effect.context<SqlClient.SqlClient>()
      const history = yield* LagHistory.make(10 * 60_000)
      const base = options.path ?? "/explorer"
      const add = (method: "GET" | "POST", path: `/${string}`, handler: Handler) =>
        router.add(method, `${base}${path}`, (request) =>
          Host.allowed(request.headers["host"], options.hosts)
            ? Respond.guard(handler(request)).pipe(Effect.provideContext(context))
            : Effect.succeed(Respond.json({ error: "This explorer does not answer to that Host" }, 421))
        )
      // The router ignores a trailing slash; the page's relative URLs need it.
      yield* add("GET", "/", (request) =>
        new URL(request.url, "http://localhost").pathname.endsWith("/")
          ? Assets.serve("index.html")
          : Effect.succeed(HttpServerResponse.empty({ status: 302, headers: { location: `${base}/` } }))
      )
      yield* add("GET", "/assets/:file", (request) =>
        Assets.serve(new URL(request.url, "http://localhost").pathname.split("/").pop() ?? "")
      )
      const machines = options.machines ?? {}
      const handlers = {
        ...browse(options),
        ...watch(machines, options.tailInterval ?? 500, history)
      }
      for (const [name, handler] of Object.entries(handlers)) yield* add("GET", `/api/${name}`, handler)
      const token = tokenOf(options)
      if (token !== undefined) {
        const act = actions(token)
        yield* add("POST", "/api/parked/retry", act.retry)
        yield* add("POST", "/api/parked/drop", act.drop)
        yield* add("POST", "/api/rebase", act.rebase)
        const running = yield* FiberMap.make<string>()
        yield* add("POST", "/api/rebuild", act.authorized(rebuild(options.projections ?? {}, running)))
      }
    })
  )

/**
 * Options of {@link serve}: those of {@link layer}, and where to listen: `host` (default {@link defaultHost},
 * this machine only; `0.0.0.0` exposes the explorer, and its token, to the network) and `port` (default 4000, `0`
 * for any free one).
 *
 * @since 0.1.0
 * @category models
 */
export interface ServeOptions extends Options {
  readonly host?: string | undefined
  readonly port?: number | undefined
}

/**
 * The explorer on a Node HTTP server of its own, for as long as the scope is open: succeeds with the URL of its
 * page once it listens.
 *
 * @since 0.1.0
 * @category servers
 */
export const serve = (options: ServeOptions = {}) =>
  NodeServer.listen(
    // On a loopback address its server checks the Host itself; on another, the names it answers to are the caller's.
    layer({ ...options, hosts: options.hosts ?? (Host.loopback(options.host ?? defaultHost) ? undefined : "any") }),
    {
      host: options.host ?? defaultHost,
      port: options.port ?? 4000,
      path: `${options.path ?? "/explorer"}/`
    }
  )
