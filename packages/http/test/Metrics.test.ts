import { NodeHttpServer } from "@effect/platform-node"
import { CommandApi } from "@evently/http"
import * as Metrics from "@evently/http/Metrics"
import { PgEventStore, PgSchema, PgSubscriptions } from "@evently/postgres"
import { Subscriptions } from "@evently/store"
import * as Telemetry from "@evently/store/Telemetry"
import { TestDatabase } from "@evently/testing"
import { assert, layer } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import { createServer } from "node:http"
import { AccountCommand, Accounts, AccountState, BalanceNotZero, NotOpen, Overdrawn } from "./Bank.ts"

const accounts = CommandApi.make({
  name: "accounts",
  handler: Accounts,
  commands: AccountCommand,
  state: AccountState,
  errors: [Overdrawn, BalanceNotZero, NotOpen],
  openapiPath: false,
  docsPath: false
})

const database = PgSchema.layerMigrate.pipe(Layer.orDie, Layer.provideMerge(TestDatabase.layer({ maxConnections: 8 })))
const stores = Layer.mergeAll(PgEventStore.layer(), PgSubscriptions.layer()).pipe(Layer.provideMerge(database))

const Server = HttpRouter.serve(
  Layer.mergeAll(
    accounts.routes,
    Metrics.layer({ refresh: Telemetry.refreshLag(["balances"]) }),
    Metrics.layer({ path: "/metrics/unrefreshed", refresh: Effect.fail("the refresh is down") })
  ),
  { disableLogger: true, disableListenLog: true }
).pipe(Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })))

const call = (method: string, path: string, body?: object) =>
  Effect.gen(function* () {
    const server = yield* HttpServer.HttpServer
    const response = yield* Effect.promise(() =>
      fetch(`${HttpServer.formatAddress(server.address)}${path}`, {
        method,
        ...(body === undefined ? {} : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
      })
    )
    return {
      status: response.status,
      type: response.headers.get("content-type"),
      text: yield* Effect.promise(() => response.text())
    }
  })

/** One sample of the exposition: `name{labels} value`. */
interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

/** The Prometheus text format (0.0.4), strictly: a line that is neither a comment nor a sample is an error. */
const parse = (text: string) => {
  const types = new Map<string, string>()
  const samples: Array<Sample> = []
  const name = "[a-zA-Z_:][a-zA-Z0-9_:]*"
  const sampleLine = new RegExp(`^(${name})(?:\\{(.*)\\})? (-?[0-9.e+-]+|[+-]Inf|NaN)$`)
  const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)/y
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("# HELP ")) continue
    const type = new RegExp(`^# TYPE (${name}) (counter|gauge|histogram|summary|untyped)$`).exec(line)
    if (type !== null) {
      types.set(type[1]!, type[2]!)
      continue
    }
    const sample = sampleLine.exec(line)
    if (sample === null) throw new Error(`not Prometheus text: ${JSON.stringify(line)}`)
    const labels: Record<string, string> = {}
    const body = sample[2] ?? ""
    label.lastIndex = 0
    while (label.lastIndex < body.length) {
      const match = label.exec(body)
      if (match === null) throw new Error(`bad labels: ${JSON.stringify(line)}`)
      labels[match[1]!] = match[2]!
    }
    samples.push({ name: sample[1]!, labels, value: Number(sample[3]!.replace("Inf", "Infinity")) })
  }
  return { types, samples }
}

const open = (id: string) => call("POST", `/accounts/${id}/Open`, { owner: "ann" })

layer(Server.pipe(Layer.provideMerge(stores)), { excludeTestServices: true, timeout: "60 seconds" })(
  "Metrics: /metrics of an @evently/http server",
  (it) => {
    it.effect("serves evently's series as Prometheus text, with the subscription lag refreshed at each scrape", () =>
      Effect.gen(function* () {
        assert.strictEqual((yield* open("m1")).status, 200)
        // The subscription handles the first account, then stops: the next account is its lag.
        const subscriptions = yield* Subscriptions.Subscriptions
        const handled = yield* Deferred.make<void>()
        const worker = yield* Effect.forkChild(
          subscriptions.run("balances", () => Deferred.succeed(handled, undefined), { categories: [accounts.category] })
        )
        yield* Deferred.await(handled)
        yield* subscriptions.waitUntilCaughtUp("balances")
        yield* Fiber.interrupt(worker)
        assert.strictEqual((yield* open("m2")).status, 200)

        const response = yield* call("GET", "/metrics")
        assert.strictEqual(response.status, 200)
        assert.strictEqual(response.type, Metrics.contentType)
        const { samples, types } = parse(response.text)
        const one = (name: string, labels: Record<string, string> = {}) =>
          samples.filter(
            (sample) =>
              sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value)
          )

        assert.strictEqual(types.get("evently_append_flushes"), "counter")
        assert.isAtLeast(one("evently_append_flushes")[0]!.value, 2)
        assert.strictEqual(types.get("evently_append_batch_size"), "histogram")
        assert.isAtLeast(one("evently_append_batch_size_count")[0]!.value, 2)
        assert.strictEqual(
          one("evently_append_batch_size_bucket", { le: "+Inf" })[0]!.value,
          one("evently_append_batch_size_count")[0]!.value
        )
        assert.isAtLeast(one("evently_append_batch_size_bucket", { le: "1" })[0]!.value, 1)

        const subscription = { subscription: "balances", partition: "0" }
        assert.strictEqual(types.get("evently_subscription_events_committed"), "counter")
        assert.strictEqual(one("evently_subscription_events_committed", subscription)[0]?.value, 1)
        assert.strictEqual(types.get("evently_subscription_lag_events"), "gauge")
        assert.strictEqual(one("evently_subscription_lag_events", subscription)[0]?.value, 1)
        assert.strictEqual(types.get("evently_subscription_lag_seconds"), "gauge")
        assert.strictEqual(one("evently_subscription_lag_seconds", subscription).length, 1)
      })
    )

    it.effect("a refresh that fails leaves the scrape answering with the values the series had", () =>
      Effect.gen(function* () {
        assert.strictEqual((yield* open("m3")).status, 200)
        const response = yield* call("GET", "/metrics/unrefreshed")
        assert.strictEqual(response.status, 200)
        const { samples } = parse(response.text)
        assert.isAtLeast(samples.find((sample) => sample.name === "evently_append_flushes")!.value, 1)
      })
    )
  }
)
