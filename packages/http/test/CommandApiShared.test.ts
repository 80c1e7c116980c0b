import { NodeHttpServer } from "@effect/platform-node"
import { assert, layer } from "@effect/vitest"
import { CommandApi } from "@evently/http"
import { EventStore } from "@evently/store"
import * as Effect from "effect/Effect"
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
  errors: [{ schema: Overdrawn, status: 422 }, BalanceNotZero, NotOpen]
})
const savings = CommandApi.make({
  name: "savings",
  handler: Accounts,
  commands: AccountCommand,
  state: AccountState,
  errors: [NotOpen]
})

const Server = HttpRouter.serve(
  CommandApi.serve({ id: "bank", title: "Bank", version: "2.0.0" }, [accounts, savings]),
  {
    disableLogger: true,
    disableListenLog: true
  }
).pipe(
  Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })),
  Layer.provide(EventStore.layerMemory)
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
    const json = (yield* Effect.promise(() => response.json())) as Record<string, unknown>
    return { status: response.status, body: json }
  })

layer(Server, { excludeTestServices: true })("CommandApi.serve", (it) => {
  it.effect("serves several containers as one API with one OpenAPI document of the user's id, title and version", () =>
    Effect.gen(function* () {
      assert.strictEqual((yield* call("POST", "/accounts/a1/Open", { owner: "ann" })).status, 200)
      assert.strictEqual((yield* call("POST", "/savings/s1/Open", { owner: "bob" })).status, 200)
      assert.strictEqual((yield* call("POST", "/savings/s1/Explode", {})).status, 404)
      const document = (yield* call("GET", "/openapi.json")).body as {
        readonly info: { readonly title: string; readonly version: string }
        readonly paths: Record<string, unknown>
      }
      assert.strictEqual(document.info.title, "Bank")
      assert.strictEqual(document.info.version, "2.0.0")
      assert.includeMembers(Object.keys(document.paths), ["/accounts/{id}/Withdraw", "/savings/{id}/Withdraw"])
    })
  )
})
