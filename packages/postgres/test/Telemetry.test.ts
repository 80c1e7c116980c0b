import { PgEventStore } from "@evently/postgres"
import { CommandHandler, EventCodec, EventStore, ExpectedVersion, Subscriptions } from "@evently/store"
import * as Telemetry from "@evently/store/Telemetry"
import { assert, layer } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { insertEvents, layerSubscriptions } from "./helpers.ts"

/** One request the receiver got. */
interface Post {
  readonly path: string
  readonly contentType: string
  readonly authorization: string | undefined
  readonly body: Buffer
}

interface Receiver {
  readonly url: string
  readonly posts: Array<Post>
  readonly server: Server
}

/** A small OTLP/HTTP receiver on 127.0.0.1: it keeps every post and answers 200, as a collector does. */
const receiver = Effect.acquireRelease(
  Effect.callback<Receiver>((resume) => {
    const posts: Array<Post> = []
    const server = createServer((request, response) => {
      const chunks: Array<Buffer> = []
      request.on("data", (chunk: Buffer) => chunks.push(chunk))
      request.on("end", () => {
        const contentType = request.headers["content-type"] ?? ""
        const authorization = request.headers.authorization
        posts.push({ path: request.url ?? "", contentType, authorization, body: Buffer.concat(chunks) })
        response.writeHead(200, { "content-type": "application/json" }).end("{}")
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resume(Effect.succeed({ url: `http://127.0.0.1:${port}`, posts, server }))
    })
  }),
  ({ server }) => Effect.callback<void>((resume) => void server.close(() => resume(Effect.void)))
)

interface Attribute {
  readonly key: string
  readonly value: { readonly stringValue?: string; readonly intValue?: number | string }
}
interface JsonSpan {
  readonly name: string
  readonly attributes: ReadonlyArray<Attribute>
}

const attributesOf = (attributes: ReadonlyArray<Attribute>) =>
  Object.fromEntries(attributes.map(({ key, value }) => [key, value.stringValue ?? Number(value.intValue)]))

interface JsonMetric {
  readonly name: string
  readonly sum?: {
    readonly dataPoints: ReadonlyArray<{ readonly asInt?: number | string; readonly asDouble?: number }>
  }
  readonly histogram?: unknown
  readonly gauge?: {
    readonly dataPoints: ReadonlyArray<{
      readonly attributes: ReadonlyArray<Attribute>
      readonly asInt?: number | string
      readonly asDouble?: number
    }>
  }
}
/** The parts of the OTLP JSON bodies the tests read. */
interface Bodies {
  readonly "/v1/traces": {
    readonly resourceSpans: ReadonlyArray<{
      readonly resource: { readonly attributes: ReadonlyArray<Attribute> }
      readonly scopeSpans: ReadonlyArray<{ readonly spans: ReadonlyArray<JsonSpan> }>
    }>
  }
  readonly "/v1/metrics": {
    readonly resourceMetrics: ReadonlyArray<{
      readonly scopeMetrics: ReadonlyArray<{ readonly metrics: ReadonlyArray<JsonMetric> }>
    }>
  }
  readonly "/v1/logs": {
    readonly resourceLogs: ReadonlyArray<{
      readonly scopeLogs: ReadonlyArray<{
        readonly logRecords: ReadonlyArray<{ readonly body: { stringValue?: string } }>
      }>
    }>
  }
}

const json = <P extends keyof Bodies>(posts: ReadonlyArray<Post>, path: P): ReadonlyArray<Bodies[P]> =>
  posts.filter((post) => post.path === path).map((post) => JSON.parse(post.body.toString("utf8")) as Bodies[P])

const spansOf = (posts: ReadonlyArray<Post>) =>
  json(posts, "/v1/traces").flatMap((body) =>
    body.resourceSpans.flatMap((resource) => resource.scopeSpans.flatMap((scope) => scope.spans))
  )

const Counted = Schema.TaggedUnion({ Added: { n: Schema.Int } })
const counter = CommandHandler.make({
  decider: {
    initial: 0,
    evolve: (total: number, event: typeof Counted.Type) => total + event.n,
    decide: (command: { readonly _tag: "Add"; readonly n: number }) =>
      Result.succeed([Counted.cases.Added.make({ n: command.n })])
  },
  codec: EventCodec.make(Counted)
})

let runs = 0

/** Appends to `order-<n>`, handles a command on `count-<n>` and logs, with telemetry exported by `telemetry`; the
 * layer's scope (its final export) ends with it. */
const work = <E, R>(telemetry: Layer.Layer<never, E, R>) =>
  Effect.gen(function* () {
    const run = ++runs
    const store = yield* EventStore.EventStore
    yield* store.append(
      `order-${run}`,
      [
        { type: "Placed", data: {} },
        { type: "Paid", data: {} }
      ],
      {
        expected: ExpectedVersion.NoStream
      }
    )
    yield* store.streamVersion(`order-${run}`)
    const handler = yield* counter
    yield* handler.handle(`count-${run}`, { _tag: "Add", n: 2 })
    yield* Effect.logInfo("telemetry reaches the collector")
    return run
  }).pipe(Effect.provide(telemetry))

const store = PgEventStore.layer().pipe(Layer.provideMerge(layerSubscriptions(4)))

layer(store, { timeout: "60 seconds", excludeTestServices: true })("Telemetry.layerOtlp", (it) => {
  it.effect("exports spans with their attributes, metrics and logs as OTLP JSON, configured by OTEL_* variables", () =>
    Effect.gen(function* () {
      const { posts, url } = yield* receiver
      const env = ConfigProvider.fromEnvRecord({
        OTEL_EXPORTER_OTLP_ENDPOINT: url,
        OTEL_SERVICE_NAME: "billing",
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_EXPORTER_OTLP_HEADERS: "authorization=Bearer%20secret"
      })
      const run = yield* work(Layer.provide(Telemetry.layerOtlp(), ConfigProvider.layer(env)))

      assert.deepStrictEqual([...new Set(posts.map((post) => post.authorization))], ["Bearer secret"])
      const spans = spansOf(posts)
      const append = spans.find(
        (span) => span.name === "PgEventStore.append" && attributesOf(span.attributes)["stream"] === `order-${run}`
      )
      assert.isDefined(append, `no append span in ${spans.map((span) => span.name).join(", ")}`)
      assert.deepInclude(attributesOf(append!.attributes), {
        stream: `order-${run}`,
        expected_version: "no_stream",
        events: 2,
        "batch.size": 1
      })
      const version = spans.find((span) => span.name === "PgEventStore.streamVersion")
      assert.deepStrictEqual(attributesOf(version!.attributes), { stream: `order-${run}` })
      const handle = spans.find((span) => span.name === "CommandHandler.handle")
      assert.deepInclude(attributesOf(handle!.attributes), {
        stream: `count-${run}`,
        "command.tag": "Add",
        attempts: 1,
        outcome: "appended"
      })
      const traced = json(posts, "/v1/traces")[0]!.resourceSpans[0]!.resource
      assert.deepInclude(attributesOf(traced.attributes), { "service.name": "billing" })

      const metrics = json(posts, "/v1/metrics").flatMap((body) =>
        body.resourceMetrics.flatMap((resource) => resource.scopeMetrics.flatMap((scope) => scope.metrics))
      )
      const flushes = metrics.filter((metric) => metric.name === "evently_append_flushes").at(-1)
      assert.isDefined(flushes, `no evently_append_flushes in ${metrics.map((metric) => metric.name).join(", ")}`)
      const point = flushes!.sum!.dataPoints[0]!
      // The append and the command's append: two group-commit flushes at least.
      assert.isAtLeast(Number(point.asInt ?? point.asDouble), 2)
      const batches = metrics.find((metric) => metric.name === "evently_append_batch_size")
      assert.isDefined(batches?.histogram, "evently_append_batch_size is exported as a histogram")

      const logs = json(posts, "/v1/logs").flatMap((body) =>
        body.resourceLogs.flatMap((resource) => resource.scopeLogs.flatMap((scope) => scope.logRecords))
      )
      assert.include(
        logs.map((record) => record.body.stringValue),
        "telemetry reaches the collector"
      )
    }).pipe(Effect.scoped)
  )

  it.effect("posts protobuf by default, to the URL given in the options", () =>
    Effect.gen(function* () {
      const { posts, url } = yield* receiver
      yield* work(
        Telemetry.layerOtlp({ url, serviceName: "ledger" }).pipe(
          Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnvRecord({})))
        )
      )
      const traces = posts.filter((post) => post.path === "/v1/traces")
      assert.isAbove(traces.length, 0, `posts: ${posts.map((post) => post.path).join(", ")}`)
      assert.strictEqual(traces[0]!.contentType, "application/x-protobuf")
      // Protobuf keeps strings as UTF-8 bytes: the span name, the attribute keys and the service name are in there.
      const bytes = Buffer.concat(traces.map((post) => post.body)).toString("latin1")
      for (const text of ["PgEventStore.append", "expected_version", "batch.size", "ledger"]) {
        assert.isTrue(bytes.includes(text), `the protobuf traces do not hold '${text}'`)
      }
      assert.isTrue(posts.some((post) => post.path === "/v1/metrics" && post.body.includes("evently_append_flushes")))
    }).pipe(Effect.scoped)
  )

  it.effect("exports nothing when no endpoint is configured, or when OTEL_SDK_DISABLED is true", () =>
    Effect.gen(function* () {
      const { posts, url } = yield* receiver
      yield* work(Layer.provide(Telemetry.layerOtlp(), ConfigProvider.layer(ConfigProvider.fromEnvRecord({}))))
      const disabled = ConfigProvider.fromEnvRecord({ OTEL_EXPORTER_OTLP_ENDPOINT: url, OTEL_SDK_DISABLED: "true" })
      yield* work(Layer.provide(Telemetry.layerOtlp(), ConfigProvider.layer(disabled)))
      assert.deepStrictEqual(posts, [])
      // The same receiver does get posts once the endpoint is set: the silence above is the layer's, not the receiver's.
      const enabled = ConfigProvider.fromEnvRecord({ OTEL_EXPORTER_OTLP_ENDPOINT: url })
      yield* work(Layer.provide(Telemetry.layerOtlp(), ConfigProvider.layer(enabled)))
      assert.isAbove(posts.length, 0)
      // No service name anywhere: OpenTelemetry's default.
      assert.isTrue(posts.every((post) => post.body.toString("latin1").includes("unknown_service")))
    }).pipe(Effect.scoped)
  )

  it.effect("layerLag measures the subscriptions' lag when it starts, and the export carries it", () =>
    Effect.gen(function* () {
      const { posts, url } = yield* receiver
      yield* insertEvents("invoice-1", 1)
      // The subscription handles the first invoice and stops; two more are its lag.
      const subscriptions = yield* Subscriptions.Subscriptions
      const handled = yield* Deferred.make<void>()
      const worker = yield* Effect.forkChild(
        subscriptions.run("invoicing", () => Deferred.succeed(handled, undefined), { categories: ["invoice"] })
      )
      yield* Deferred.await(handled)
      yield* subscriptions.waitUntilCaughtUp("invoicing")
      yield* Fiber.interrupt(worker)
      yield* insertEvents("invoice-2", 2)

      const telemetry = Telemetry.layerOtlp({ url, protocol: "http/json" }).pipe(
        Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnvRecord({})))
      )
      yield* work(Layer.merge(telemetry, Telemetry.layerLag(["invoicing"], { interval: "1 hour" })))
      const lags = json(posts, "/v1/metrics")
        .flatMap((body) => body.resourceMetrics.flatMap((resource) => resource.scopeMetrics))
        .flatMap((scope) => scope.metrics)
        .filter((metric) => metric.name === "evently_subscription_lag_events")
        .flatMap((metric) => metric.gauge!.dataPoints)
        .filter((point) => attributesOf(point.attributes)["subscription"] === "invoicing")
      assert.deepStrictEqual(
        lags.map((point) => [attributesOf(point.attributes), Number(point.asInt ?? point.asDouble)]),
        [[{ subscription: "invoicing", partition: "0" }, 2]]
      )
    }).pipe(Effect.scoped)
  )

  it.effect("refuses a bad endpoint, protocol or resource attribute with a typed error", () =>
    Effect.gen(function* () {
      const empty = ConfigProvider.layer(ConfigProvider.fromEnvRecord({}))
      const failure = yield* Effect.flip(work(Layer.provide(Telemetry.layerOtlp({ url: "collector:4318" }), empty)))
      assert.instanceOf(failure, Telemetry.InvalidTelemetryOptions)
      assert.include(failure.message, "'collector:4318' is not an http(s) URL")

      const grpc = ConfigProvider.fromEnvRecord({
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4317",
        OTEL_EXPORTER_OTLP_PROTOCOL: "grpc"
      })
      const refused = yield* Effect.flip(work(Layer.provide(Telemetry.layerOtlp(), ConfigProvider.layer(grpc))))
      assert.strictEqual(refused._tag, "ConfigError")
      assert.include(refused.message, "OTEL_EXPORTER_OTLP_PROTOCOL")

      const malformed = ConfigProvider.fromEnvRecord({
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318",
        OTEL_RESOURCE_ATTRIBUTES: "team=%E0%A4%A"
      })
      const attributes = yield* Effect.flip(
        work(Layer.provide(Telemetry.layerOtlp({ serviceName: "x" }), ConfigProvider.layer(malformed)))
      )
      assert.strictEqual(attributes._tag, "ConfigError")
      assert.include(attributes.message, "OTEL_RESOURCE_ATTRIBUTES")
    })
  )
})
