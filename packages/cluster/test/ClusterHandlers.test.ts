import { NodeHttpServer } from "@effect/platform-node"
import { ClusterHandlers, ClusterRunner } from "@evently/cluster"
import { EventStore } from "@evently/store"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import { createServer } from "node:http"
import { wallets } from "./fixtures/Wallets.ts"

/** The wallets served over HTTP on a port of their own and a memory store, with the handlers `Maker` gives. */
const served = <R>(handlers: Layer.Layer<never, never, R>) =>
  HttpRouter.serve(wallets.routes, { disableLogger: true, disableListenLog: true }).pipe(
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })),
    Layer.provide(handlers),
    Layer.provideMerge(EventStore.layerMemory)
  )

const Local = served(Layer.empty)
const Clustered = served(ClusterHandlers.layer().pipe(Layer.provide(ClusterRunner.layerTest)))

interface Answer {
  readonly status: number
  readonly etag: string | null
  readonly body: unknown
}

const call = (method: string, path: string, body?: object, headers: Record<string, string> = {}) =>
  Effect.gen(function* () {
    const server = yield* HttpServer.HttpServer
    const response = yield* Effect.promise(() =>
      fetch(`${HttpServer.formatAddress(server.address)}${path}`, {
        method,
        headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
        ...(body === undefined ? {} : { body: JSON.stringify(body) })
      })
    )
    const text = yield* Effect.promise(() => response.text())
    const answer: Answer = {
      status: response.status,
      etag: response.headers.get("etag"),
      body: text === "" ? undefined : JSON.parse(text)
    }
    return answer
  })

/** One wallet's story: every kind of answer a command resource gives. */
const story = Effect.all([
  call("POST", "/wallets/w1/Open", { owner: "ann" }),
  call("POST", "/wallets/w1/Deposit", { amount: 100 }, { "idempotency-key": "k1" }),
  call("POST", "/wallets/w1/Deposit", { amount: 100 }, { "idempotency-key": "k1" }), // replayed
  call("POST", "/wallets/w1/Deposit", { amount: 7 }, { "idempotency-key": "k1" }), // the key reused: 422
  call("POST", "/wallets/w1/Withdraw", { amount: 500 }), // overdrawn: 422
  call("POST", "/wallets/w1/Open", { owner: "bob" }), // already open: 409
  call("POST", "/wallets/w1/Withdraw", { amount: 10 }, { "if-match": '"1"' }), // stale: 412
  call("POST", "/wallets/w1/Withdraw", { amount: 10 }, { "if-match": '"2"' }),
  call("GET", "/wallets/w1"),
  call("GET", "/wallets/w2") // none: 404
])

describe("CommandApi's commands through the cluster (one in-process runner)", () => {
  it.live("answers exactly as the local handler: states, ETags, replays, domain errors and stale If-Match", () =>
    Effect.gen(function* () {
      const local = yield* story.pipe(Effect.provide(Local))
      const clustered = yield* story.pipe(Effect.provide(Clustered))
      assert.deepStrictEqual(
        clustered.map((answer) => answer.status),
        [200, 200, 200, 422, 422, 409, 412, 200, 200, 404]
      )
      assert.deepStrictEqual(clustered, local)
      assert.deepStrictEqual(clustered[1]!.body, clustered[2]!.body)
      assert.deepStrictEqual(
        [(clustered[4]!.body as { tag: string }).tag, (clustered[5]!.body as { tag: string }).tag],
        ["Overdrawn", "AlreadyOpen"]
      )
      assert.deepStrictEqual(clustered[8]!.body, {
        id: "w1",
        version: 3,
        state: { owner: "ann", balance: 90, deposits: 1 }
      })
    })
  )

  it.live("the commands go through the cluster: with no runner owning the stream, a command is a 503", () =>
    Effect.gen(function* () {
      const answer = yield* call("POST", "/wallets/w1/Open", { owner: "ann" })
      assert.strictEqual(answer.status, 503)
      assert.strictEqual((answer.body as { tag: string }).tag, "DeliveryFailed")
    }).pipe(
      Effect.provide(
        served(
          ClusterHandlers.layer({ clientOnly: true, deliveryTimeout: "300 millis" }).pipe(
            Layer.provide(ClusterRunner.layerTest)
          )
        )
      )
    )
  )
})
