import { assert, layer } from "@effect/vitest"
import { Subscriptions } from "@evently/store"
import { SubscriptionsSuite } from "@evently/testing"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as SqlClient from "effect/sql/SqlClient"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { insertEvents, layerSubscriptions, positionsOf } from "./helpers.ts"

const workerPath = fileURLToPath(new URL("./worker.ts", import.meta.url))

const startWorker = (database: string) =>
  Effect.acquireRelease(
    Effect.callback<{ readonly pid: number; readonly kill: () => void }>((resume) => {
      const child = spawn(process.execPath, [workerPath], {
        env: { ...process.env, EVENTLY_WORKER_DATABASE: database },
        stdio: ["ignore", "pipe", "inherit"]
      })
      child.stdout.on("data", (chunk: Buffer) => {
        if (chunk.toString().includes("ready")) {
          resume(Effect.succeed({ pid: child.pid!, kill: () => child.kill("SIGKILL") }))
        }
      })
      child.on("exit", (code) => resume(Effect.die(new Error(`worker exited early with ${code}`))))
    }),
    (worker) => Effect.sync(worker.kill)
  )

const waitForRows = (count: number) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    while (true) {
      const [row] = yield* sql<{ count: number }>`select count(*)::int as count from proc_handled`
      if (row!.count >= count) return
      yield* Effect.sleep("50 millis")
    }
  }).pipe(Effect.timeout("20 seconds"))

layer(layerSubscriptions(), { excludeTestServices: true, timeout: "60 seconds" })("PgSubscriptions processes", (it) => {
  it.effect("two processes on one subscription: one active at a time; kill it and the other continues", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* sql`create table proc_handled (position bigint not null, pid integer not null)`
      const [{ name }] = yield* sql<{ name: string }>`select current_database() as name`
      yield* insertEvents("proc-1", 20)
      const first = yield* startWorker(name)
      const second = yield* startWorker(name)
      yield* waitForRows(20)

      const active = yield* sql<{ pid: number }>`select distinct pid from proc_handled`
      assert.strictEqual(active.length, 1)
      const [killed, standby] = active[0]!.pid === first.pid ? [first, second] : [second, first]
      killed.kill()

      yield* insertEvents("proc-1", 20)
      yield* waitForRows(40)
      const rows = yield* sql<{
        position: bigint
        pid: number
      }>`select position, pid from proc_handled order by position`
      assert.deepStrictEqual(
        rows.map((row) => BigInt(row.position)),
        yield* positionsOf("proc")
      )
      assert.deepStrictEqual(
        rows.map((row) => row.pid),
        [...Array(20).fill(killed.pid), ...Array(20).fill(standby.pid)]
      )
    }).pipe(Effect.scoped)
  )
})

// A database of its own: the checkpoint and the events of the test above are not this one's.
layer(layerSubscriptions(), { excludeTestServices: true, timeout: "60 seconds" })(
  "PgSubscriptions lifecycle across processes",
  (it) => {
    it.effect(
      "a standby in this process says Standby (with the holder's pid), then TookOver once its peer is killed",
      () =>
        Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          const subs = yield* Subscriptions.Subscriptions
          yield* sql`create table proc_handled (position bigint not null, pid integer not null)`
          const [{ name }] = yield* sql<{ name: string }>`select current_database() as name`
          yield* insertEvents("proc-1", 20)
          const peer = yield* startWorker(name)
          yield* waitForRows(20)
          const seen = yield* SubscriptionsSuite.watchLifecycle(subs)
          // The same subscription as the worker's, handled here with this process's pid.
          const standby = yield* subs
            .run(
              "procs",
              (event) => sql`insert into proc_handled (position, pid) values (${event.position}, ${process.pid})`,
              { categories: ["proc"], transactional: true, batchSize: 5, pollInterval: "200 millis" }
            )
            .pipe(Effect.forkChild)
          const phases = () => SubscriptionsSuite.phasesOf(seen, "procs")
          yield* SubscriptionsSuite.until(() => phases().some((phase) => phase._tag === "Standby"))
          const waiting = phases().find((phase) => phase._tag === "Standby")!
          const heldBy = waiting._tag === "Standby" ? waiting.heldByPid : undefined
          const [holder] = yield* sql<{ application: string }>`
        select application_name as application from pg_stat_activity where pid = ${heldBy ?? -1}`
          assert.strictEqual(holder?.application, `worker-${peer.pid}`)

          yield* insertEvents("proc-1", 10)
          yield* waitForRows(30)
          peer.kill()
          yield* insertEvents("proc-1", 10)
          yield* waitForRows(40)
          yield* SubscriptionsSuite.until(() => phases().some((phase) => phase._tag === "CaughtUp"))
          yield* Fiber.interrupt(standby)
          assert.deepStrictEqual(
            phases()
              .slice(0, 4)
              .map((phase) => phase._tag),
            ["Started", "Standby", "TookOver", phases()[3]!._tag === "CatchingUp" ? "CatchingUp" : "CaughtUp"]
          )
          // Nothing lost, nothing handled twice: the killed peer's rows, then this process's.
          const rows = yield* sql<{
            position: bigint
            pid: number
          }>`select position, pid from proc_handled order by position`
          assert.deepStrictEqual(
            rows.map((row) => BigInt(row.position)),
            yield* positionsOf("proc")
          )
          assert.deepStrictEqual(
            rows.map((row) => row.pid),
            [...Array(30).fill(peer.pid), ...Array(10).fill(process.pid)]
          )
        }).pipe(Effect.scoped)
    )
  }
)
