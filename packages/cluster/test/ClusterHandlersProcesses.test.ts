import { assert, layer } from "@effect/vitest"
import { EventStore } from "@evently/store"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { child, databaseName, freePort, layerStore, lineOf, settled, unique } from "./helpers.ts"

const shards = 60

/** Starts a process that is a runner and an HTTP server of the wallets, and waits until it serves. */
const httpRunner = (database: string, prefix: string) =>
  Effect.gen(function* () {
    const [runnerPort, httpPort] = [yield* freePort, yield* freePort]
    const started = yield* child("./fixtures/httpRunnerProcess.ts", {
      EVENTLY_WORKER_DATABASE: database,
      CLUSTER_PREFIX: prefix,
      RUNNER_PORT: String(runnerPort),
      HTTP_PORT: String(httpPort)
    })
    yield* lineOf(started, "ready")
    return { ...started, base: `http://127.0.0.1:${httpPort}`, applicationName: `runner-${runnerPort}` }
  })

interface Answer {
  readonly status: number
  readonly body: { readonly [key: string]: unknown; readonly tag?: string }
}

const call = (base: string, method: string, path: string, body?: object, headers: Record<string, string> = {}) =>
  Effect.promise(async (): Promise<Answer> => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    })
    return { status: response.status, body: JSON.parse(await response.text()) as Answer["body"] }
  })

const wallets = 8
const deposits = 80

layer(layerStore, { excludeTestServices: true, timeout: "120 seconds" })(
  "CommandApi over two runner processes",
  (it) => {
    it.effect(
      "commands sent to either process are handled by the stream's owner, each once; GETs from both agree",
      () =>
        Effect.gen(function* () {
          const database = yield* databaseName
          const prefix = unique("w")
          const first = yield* httpRunner(database, prefix)
          const second = yield* httpRunner(database, prefix)
          yield* settled([first.applicationName, second.applicationName], shards)
          const bases = [first.base, second.base]
          const ids = Array.from({ length: wallets }, (_, i) => `w${i}`)

          for (const [i, id] of ids.entries()) {
            assert.strictEqual((yield* call(bases[i % 2]!, "POST", `/wallets/${id}/Open`, { owner: id })).status, 200)
          }
          // Each wallet's deposits alternate between the two processes, many at once on each wallet.
          const answers = yield* Effect.forEach(
            Array.from({ length: deposits }, (_, k) => k),
            (k) =>
              call(
                bases[Math.floor(k / wallets) % 2]!,
                "POST",
                `/wallets/w${k % wallets}/Deposit`,
                { amount: k + 1 },
                {
                  "idempotency-key": `d-${k}`
                }
              ),
            { concurrency: 16 }
          )
          assert.deepStrictEqual(
            answers.map((answer) => answer.status),
            answers.map(() => 200)
          )

          // The typed errors cross the wire: an overdraft (422) and a stale If-Match (412), through either process.
          const overdraft = yield* call(second.base, "POST", "/wallets/w0/Withdraw", { amount: 1_000_000 })
          assert.deepStrictEqual([overdraft.status, overdraft.body.tag], [422, "Overdrawn"])
          const stale = yield* call(first.base, "POST", "/wallets/w1/Withdraw", { amount: 1 }, { "if-match": '"1"' })
          assert.deepStrictEqual([stale.status, stale.body.tag], [412, "PreconditionFailed"])

          // Both processes read the same state from the owner: every deposit once.
          for (const [i, id] of ids.entries()) {
            const mine = Array.from({ length: deposits }, (_, k) => k).filter((k) => k % wallets === i)
            const expected = {
              id,
              version: 1 + mine.length,
              state: { owner: id, balance: mine.reduce((sum, k) => sum + k + 1, 0), deposits: mine.length }
            }
            assert.deepStrictEqual((yield* call(first.base, "GET", `/wallets/${id}`)).body, expected)
            assert.deepStrictEqual((yield* call(second.base, "GET", `/wallets/${id}`)).body, expected)
          }

          // Each wallet's events were all appended by one process, its owner, though its commands came through both.
          const store = yield* EventStore.EventStore
          const events = yield* Stream.runCollect(store.readCategories(["wallet"])).pipe(Effect.orDie)
          assert.strictEqual(events.length, wallets + deposits)
          assert.strictEqual(new Set(events.map((event) => event.metadata.causationId)).size, wallets + deposits)
          for (const id of ids) {
            const runners = new Set(
              events
                .filter((event) => event.stream === `wallet-${id}`)
                .map((event) => event.metadata.headers?.["runner"])
            )
            assert.strictEqual(runners.size, 1, `wallet-${id} was written by ${[...runners].join(", ")}`)
          }
        }).pipe(Effect.scoped),
      120_000
    )
  }
)
