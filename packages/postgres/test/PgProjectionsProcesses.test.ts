import { assert, layer } from "@effect/vitest"
import * as PgProjections from "@evently/postgres/PgProjections"
import { Subscriptions } from "@evently/store"
import * as Projection from "@evently/store/Projection"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import * as SqlClient from "effect/sql/SqlClient"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { layerSubscriptions } from "./helpers.ts"
import { ItemsV1, ItemsV2, expectedItems, itemsOf, writeItems } from "./projections.ts"

const workerPath = fileURLToPath(new URL("./projectionWorker.ts", import.meta.url))

// A worker process running partition `partition` of 3 of the items projection's version 2; `output` collects what it
// prints (its log lines).
const startWorker = (database: string, partition: number, output: Array<string>) =>
  Effect.acquireRelease(
    Effect.callback<{ readonly kill: () => void }>((resume) => {
      const child = spawn(process.execPath, [workerPath], {
        env: {
          ...process.env,
          EVENTLY_WORKER_DATABASE: database,
          EVENTLY_WORKER_PARTITION: String(partition),
          EVENTLY_WORKER_VERSION: "2"
        },
        stdio: ["ignore", "pipe", "inherit"]
      })
      child.stdout.on("data", (chunk: Buffer) => {
        output.push(chunk.toString())
        if (chunk.toString().includes("ready")) resume(Effect.succeed({ kill: () => child.kill("SIGKILL") }))
      })
      child.on("exit", (code) => resume(Effect.die(new Error(`worker exited early with ${code}`))))
    }),
    (worker) => Effect.sync(worker.kill)
  )

const v2Partitions = Effect.flatMap(Subscriptions.Subscriptions, (subscriptions) =>
  subscriptions.status(Projection.subscriptionName(ItemsV2))
)

layer(layerSubscriptions(), { excludeTestServices: true, timeout: "90 seconds" })("PgProjections processes", (it) => {
  it.effect("a rebuild across 3 processes as a consumer group switches once, after every partition caught up", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const [{ name }] = yield* sql<{ name: string }>`select current_database() as name`
      yield* writeItems(1, 300, { rename: true })
      const v1 = yield* Effect.forkChild(PgProjections.run(ItemsV1, { registryPollInterval: "100 millis" }))
      yield* PgProjections.waitUntilCaughtUp("items")

      const output: Array<string> = []
      yield* startWorker(name, 0, output)
      yield* startWorker(name, 1, output)
      // Partitions 0 and 1 catch up; with partition 2 never started, the build may not take over.
      yield* Effect.repeat(v2Partitions, {
        until: (status) => status.partitions.length === 2 && status.partitions.every((p) => p.lagEvents === 0),
        schedule: Schedule.spaced("100 millis")
      })
      const before = yield* PgProjections.builds("items")
      assert.deepStrictEqual(
        before.map((b) => [b.version, b.state]),
        [
          [1, "active"],
          [2, "building"]
        ]
      )

      yield* startWorker(name, 2, output)
      yield* writeItems(301, 320)
      yield* Effect.repeat(PgProjections.builds("items"), {
        until: (builds) => builds.some((b) => b.version === 2 && b.state === "active"),
        schedule: Schedule.spaced("100 millis")
      })
      yield* PgProjections.waitUntilCaughtUp("items")
      const status = yield* v2Partitions
      assert.deepStrictEqual(
        status.partitions.map((p) => [p.partition, p.lagEvents]),
        [
          [0, 0],
          [1, 0],
          [2, 0]
        ]
      )
      assert.deepStrictEqual(yield* itemsOf("items"), yield* expectedItems)
      const tookOver = output
        .join("")
        .split("\n")
        .filter((line) => line.includes("version 2 took over"))
      assert.strictEqual(tookOver.length, 1, output.join(""))
      yield* Fiber.interrupt(v1)
    }).pipe(Effect.scoped)
  )
})
