import { NodeHttpServer } from "@effect/platform-node"
import { CommandApi } from "@evently/http"
import { PgEventStore, PgSchema } from "@evently/postgres"
import { EventStore } from "@evently/store"
import { TestDatabase } from "@evently/testing"
import { assert, layer } from "@effect/vitest"
import { Validator } from "@seriousme/openapi-schema-validator"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import { createServer } from "node:http"
import { AccountCommand, AccountMachine, Accounts, AccountState, BalanceNotZero, NotOpen, Overdrawn } from "./Bank.ts"

const accounts = CommandApi.make({
  name: "accounts",
  handler: Accounts,
  commands: AccountCommand,
  state: AccountState,
  errors: [{ schema: Overdrawn, status: 422 }, BalanceNotZero, NotOpen],
  title: "Bank",
  version: "1.2.3"
})

// The same accounts as ledgers, with raw events turned on: they are checked by the machine only.
const ledgers = CommandApi.make({
  name: "ledgers",
  handler: Accounts,
  commands: AccountCommand,
  state: AccountState,
  rawEvents: { machine: AccountMachine },
  openapiPath: false,
  docsPath: false
})

const database = PgSchema.layerMigrate.pipe(Layer.orDie, Layer.provideMerge(TestDatabase.layer({ maxConnections: 12 })))
const stores = PgEventStore.layer().pipe(Layer.provideMerge(database))

const Server = HttpRouter.serve(Layer.mergeAll(accounts.routes, ledgers.routes), {
  disableLogger: true,
  disableListenLog: true
}).pipe(Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })))

interface Body {
  readonly [member: string]: unknown
  readonly id: string
  readonly version: number
  readonly state: { readonly status: string; readonly owner: string; readonly balance: number }
  readonly type: string
  readonly tag: string
  readonly status: number
  readonly detail: string
  readonly openapi: string
  readonly paths: Record<string, Record<string, { readonly responses: Record<string, { content: object }> }>>
  readonly components: { readonly schemas: Record<string, unknown> }
  readonly info: { readonly title: string; readonly version: string }
}

const call = (
  method: string,
  path: string,
  options: { readonly body?: unknown; readonly headers?: Record<string, string> } = {}
) =>
  Effect.gen(function* () {
    const server = yield* HttpServer.HttpServer
    const base = HttpServer.formatAddress(server.address)
    const body = options.body === undefined ? undefined : JSON.stringify(options.body)
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
    return { status: response.status, headers: response.headers, text, type, body: parsed as Body }
  })

const command = (id: string, name: string, body: object, headers?: Record<string, string>) =>
  call("POST", `/accounts/${id}/${name}`, { body, ...(headers === undefined ? {} : { headers }) })

const unique = () => `a${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`

const opened = (balance: number) =>
  Effect.gen(function* () {
    const id = unique()
    assert.strictEqual((yield* command(id, "Open", { owner: "ann" })).status, 200)
    if (balance > 0) assert.strictEqual((yield* command(id, "Deposit", { amount: balance })).status, 200)
    return id
  })

layer(Server.pipe(Layer.provideMerge(stores)), { excludeTestServices: true, timeout: "120 seconds" })(
  "CommandApi: the bank account over HTTP on Postgres",
  (it) => {
    it.effect("commands go through the decider: state, ETag and Location", () =>
      Effect.gen(function* () {
        const id = unique()
        const open = yield* command(id, "Open", { owner: "ann" })
        assert.strictEqual(open.status, 200)
        assert.strictEqual(open.headers.get("etag"), '"1"')
        assert.strictEqual(open.headers.get("location"), `/accounts/${id}`)
        assert.deepStrictEqual<unknown>(open.body, {
          id,
          version: 1,
          state: { status: "open", owner: "ann", balance: 0 }
        })
        const deposit = yield* command(id, "Deposit", { amount: 500 })
        assert.strictEqual(deposit.body.state.balance, 500)
        const got = yield* call("GET", `/accounts/${id}`)
        assert.strictEqual(got.status, 200)
        assert.strictEqual(got.headers.get("etag"), '"2"')
        assert.strictEqual(got.body.state.balance, 500)
        assert.strictEqual((yield* call("GET", `/accounts/${unique()}`)).status, 404)
      })
    )

    it.effect("an overdraft is refused with a 422 problem carrying the error's fields; nothing is written", () =>
      Effect.gen(function* () {
        const id = yield* opened(500)
        const refused = yield* command(id, "Withdraw", { amount: 999_999 })
        assert.strictEqual(refused.status, 422)
        assert.include(refused.type, "application/problem+json")
        assert.deepStrictEqual<unknown>(refused.body, {
          type: "urn:evently:problem:Overdrawn",
          title: "Overdrawn",
          status: 422,
          tag: "Overdrawn",
          balance: 500,
          amount: 999_999,
          detail: "A withdrawal of 999999 exceeds the balance of 500"
        })
        const got = yield* call("GET", `/accounts/${id}`)
        assert.strictEqual(got.body.state.balance, 500)
        assert.strictEqual(got.body.version, 2)
      })
    )

    it.effect("closing an account with money in it is refused with a 409 problem naming the balance", () =>
      Effect.gen(function* () {
        const id = yield* opened(30)
        const refused = yield* command(id, "Close", {})
        assert.strictEqual(refused.status, 409)
        assert.include(refused.type, "application/problem+json")
        assert.strictEqual(refused.body.tag, "BalanceNotZero")
        assert.strictEqual(refused.body.balance, 30)
        assert.strictEqual((yield* command(id, "Withdraw", { amount: 30 })).status, 200)
        const closed = yield* command(id, "Close", {})
        assert.strictEqual(closed.status, 200)
        assert.strictEqual(closed.body.state.status, "closed")
        const late = yield* command(id, "Deposit", { amount: 1 })
        assert.strictEqual(late.status, 409)
        assert.strictEqual(late.body.tag, "NotOpen")
        // The error's `status` field is not sent: `status` is the problem's own member.
        assert.strictEqual(late.body.status, 409)
        assert.strictEqual(late.body.owner, "ann")
      })
    )

    it.effect("20 concurrent withdrawals never take the balance below zero", () =>
      Effect.gen(function* () {
        const id = yield* opened(100)
        const replies = yield* Effect.forEach(
          Array.from({ length: 20 }, () => 10),
          (amount) => command(id, "Withdraw", { amount }),
          { concurrency: "unbounded" }
        )
        const statuses = replies.map((reply) => reply.status)
        const accepted = statuses.filter((status) => status === 200).length
        assert.strictEqual(accepted, 10)
        assert.strictEqual(statuses.filter((status) => status === 422).length, 10)
        const got = yield* call("GET", `/accounts/${id}`)
        assert.strictEqual(got.body.state.balance, 0)
        // Every prefix of the stored history has a balance of at least zero.
        const store = yield* EventStore.EventStore
        let balance = 0
        yield* store.readStream(`account-${id}`).pipe(
          Stream.runForEach((event) =>
            Effect.sync(() => {
              const data = event.data as { readonly amount?: number }
              if (event.type === "Deposited") balance += data.amount ?? 0
              if (event.type === "Withdrawn") balance -= data.amount ?? 0
              assert.isAtLeast(balance, 0)
            })
          )
        )
      })
    )

    it.effect("If-Match is checked against the version the decision is made on", () =>
      Effect.gen(function* () {
        const id = yield* opened(50)
        const stale = yield* command(id, "Withdraw", { amount: 5 }, { "if-match": '"1"' })
        assert.strictEqual(stale.status, 412)
        assert.strictEqual(stale.body.actual, 2)
        const fresh = yield* command(id, "Withdraw", { amount: 5 }, { "if-match": '"2"' })
        assert.strictEqual(fresh.status, 200)
        assert.strictEqual(fresh.headers.get("etag"), '"3"')
        assert.strictEqual((yield* command(id, "Withdraw", { amount: 5 }, { "if-match": "3" })).status, 400)
      })
    )

    it.effect("Idempotency-Key is the command id: the same request again appends once; another body is 422", () =>
      Effect.gen(function* () {
        const id = yield* opened(50)
        const headers = { "idempotency-key": "withdraw-once" }
        const first = yield* command(id, "Withdraw", { amount: 20 }, headers)
        const again = yield* command(id, "Withdraw", { amount: 20 }, headers)
        assert.strictEqual(first.status, 200)
        assert.strictEqual(again.status, 200)
        assert.strictEqual(again.body.version, first.body.version)
        assert.strictEqual((yield* call("GET", `/accounts/${id}`)).body.state.balance, 30)
        const other = yield* command(id, "Withdraw", { amount: 21 }, headers)
        assert.strictEqual(other.status, 422)
        assert.strictEqual(other.body.tag, "IdempotencyKeyReused")
        // The key is the command id on this account, whatever the command: another command under it is refused too.
        const deposit = yield* command(id, "Deposit", { amount: 20 }, headers)
        assert.strictEqual(deposit.status, 422)
        assert.strictEqual((yield* call("GET", `/accounts/${id}`)).body.state.balance, 30)
      })
    )

    it.effect("an unknown command, or a raw event, is a 404 problem naming the commands there are", () =>
      Effect.gen(function* () {
        const id = yield* opened(0)
        const unknown = yield* command(id, "Explode", {})
        assert.strictEqual(unknown.status, 404)
        assert.include(unknown.type, "application/problem+json")
        assert.strictEqual(
          unknown.body.detail,
          "unknown command 'Explode'; expected one of Open, Deposit, Withdraw, Close"
        )
        const raw = yield* call("POST", `/accounts/${id}/events`, { body: { _tag: "Withdrawn", amount: 999_999 } })
        assert.strictEqual(raw.status, 404)
        const bad = yield* command(id, "Withdraw", { amount: -5 })
        assert.strictEqual(bad.status, 400)
      })
    )

    it.effect("raw events, turned on, are checked by the machine only and answered with the domain's state", () =>
      Effect.gen(function* () {
        const id = unique()
        const early = yield* call("POST", `/ledgers/${id}/events`, { body: { _tag: "Deposited", amount: 5 } })
        assert.strictEqual(early.status, 409)
        assert.strictEqual(early.body.tag, "IllegalTransition")
        assert.strictEqual((yield* call("POST", `/ledgers/${id}/Open`, { body: { owner: "bob" } })).status, 200)
        const raw = yield* call("POST", `/ledgers/${id}/events`, { body: { _tag: "Deposited", amount: 5 } })
        assert.strictEqual(raw.status, 200)
        assert.deepStrictEqual<unknown>(raw.body, {
          id,
          version: 2,
          state: { status: "open", owner: "bob", balance: 5 }
        })
      })
    )

    it.effect("the OpenAPI document is valid, with the user's title and version, every command and error", () =>
      Effect.gen(function* () {
        const reply = yield* call("GET", "/openapi.json")
        assert.strictEqual(reply.status, 200)
        const document = reply.body
        const result = yield* Effect.promise(() => new Validator().validate(document))
        assert.deepStrictEqual(result.errors, undefined)
        assert.strictEqual(document.info.title, "Bank")
        assert.strictEqual(document.info.version, "1.2.3")
        assert.hasAllKeys(document.paths, [
          "/accounts/{id}",
          "/accounts/{id}/Open",
          "/accounts/{id}/Deposit",
          "/accounts/{id}/Withdraw",
          "/accounts/{id}/Close"
        ])
        const withdraw = document.paths["/accounts/{id}/Withdraw"]!.post!
        assert.includeMembers(Object.keys(withdraw.responses), ["200", "400", "409", "412", "422"])
        assert.property(withdraw.responses["422"]!.content, "application/problem+json")
        assert.includeMembers(Object.keys(document.components.schemas), [
          "Withdraw",
          "Overdrawn",
          "BalanceNotZero",
          "Account"
        ])
      })
    )
  }
)
