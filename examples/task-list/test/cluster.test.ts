/**
 * `pnpm --filter task-list cluster` twice on one Postgres: commands sent to either process are handled by each task's
 * owner, and when one process is killed (SIGKILL) the other takes over its shards and keeps serving every task.
 */
import { assert, layer } from "@effect/vitest"
import { PgConfig, PgSchema } from "@evently/postgres"
import { TestDatabase } from "@evently/testing"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as SqlClient from "effect/sql/SqlClient"
import { spawn } from "node:child_process"
import { createServer } from "node:net"
import { fileURLToPath } from "node:url"

const clusterPath = fileURLToPath(new URL("../cluster.ts", import.meta.url))

const freePort = Effect.callback<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** Starts `node cluster.ts` on free ports and waits for its `ready` line; it is SIGKILLed when the scope closes. */
const startProcess = (databaseUrl: string) =>
  Effect.gen(function* () {
    const [port, runnerPort] = [yield* freePort, yield* freePort]
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        spawn(process.execPath, [clusterPath], {
          env: { ...process.env, DATABASE_URL: databaseUrl, PORT: String(port), RUNNER_PORT: String(runnerPort) },
          stdio: ["ignore", "pipe", "pipe"]
        })
      ),
      (started) => Effect.sync(() => started.kill("SIGKILL"))
    )
    let output = ""
    yield* Effect.callback<void, Error>((resume) => {
      child.stdout.on("data", (chunk: Buffer) => {
        output += chunk.toString()
        if (output.includes("ready: ")) resume(Effect.void)
      })
      child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()))
      child.on("exit", (code) => resume(Effect.fail(new Error(`cluster.ts exited (${code}) before ready:\n${output}`))))
    })
    const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()))
    const kill = Effect.promise(() => {
      child.kill("SIGKILL")
      return exited
    })
    return { base: `http://127.0.0.1:${port}`, applicationName: `task-list-runner-${runnerPort}`, kill }
  })

/** The shard (advisory) locks each runner holds, by its application name. */
const locks = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ readonly application: string; readonly locks: number }>`
    select a.application_name as application, count(*)::int as locks
    from pg_locks l join pg_stat_activity a on a.pid = l.pid
    where l.locktype = 'advisory' and l.granted and a.datname = current_database()
    group by a.application_name`
  return Object.fromEntries(rows.map((row) => [row.application, row.locks])) as Record<string, number>
}).pipe(Effect.orDie)

/** Waits until the runners named hold all 300 shards between them, each some. */
const holdAllShards = (names: ReadonlyArray<string>) =>
  locks.pipe(
    Effect.map((held) => names.map((name) => held[name] ?? 0)),
    Effect.repeat({
      schedule: Schedule.spaced("200 millis"),
      until: (counts) => counts.every((count) => count > 0) && counts.reduce((a, b) => a + b, 0) === 300
    }),
    Effect.timeoutOrElse({
      duration: "60 seconds",
      orElse: () => Effect.die(new Error(`${names.join(" and ")} did not take all 300 shards within 60 seconds`))
    })
  )

const post = (base: string, path: string, body: object) =>
  Effect.promise(async () => {
    const response = await fetch(`${base}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body)
    })
    return { status: response.status, text: await response.text() }
  })

const get = (base: string, path: string) =>
  Effect.promise(async () => (await fetch(`${base}${path}`)).json() as Promise<{ version: number; state: object }>)

const tasks = Array.from({ length: 20 }, (_, i) => `t${i}`)

const Database = PgSchema.layerMigrate.pipe(Layer.orDie, Layer.provideMerge(TestDatabase.layer()))

layer(Database, { excludeTestServices: true, timeout: "180 seconds" })("pnpm --filter task-list cluster", (it) => {
  it.effect(
    "two processes serve every task; after one is SIGKILLed the other takes its shards and serves them all",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const [{ name }] = yield* sql<{ name: string }>`select current_database() as name`
        const server = new URL(Redacted.value(yield* PgConfig.url))
        server.pathname = `/${name}`
        // The first creates the cluster's tables; the second joins once it is ready.
        const first = yield* startProcess(server.toString())
        const second = yield* startProcess(server.toString())
        yield* holdAllShards([first.applicationName, second.applicationName])

        // Each task is created through one process and assigned through the other.
        const before = yield* Effect.forEach(
          tasks,
          (id, i) =>
            Effect.zip(
              post([first, second][i % 2]!.base, `/tasks/${id}/Create`, { description: `task ${id}` }),
              Effect.suspend(() => post([second, first][i % 2]!.base, `/tasks/${id}/Assign`, { assignee: "ada" }))
            ),
          { concurrency: 10 }
        )
        assert.deepStrictEqual(
          before.flatMap(([create, assign]) => [create.status, assign.status]),
          before.flatMap(() => [200, 200])
        )

        yield* second.kill
        // Every task, the killed process's included, takes its next commands through the survivor.
        const after = yield* Effect.forEach(
          tasks,
          (id) =>
            Effect.zip(
              post(first.base, `/tasks/${id}/Schedule`, { deadline: "2030-01-01" }),
              Effect.suspend(() => post(first.base, `/tasks/${id}/Start`, {}))
            ),
          { concurrency: 10 }
        )
        for (const [schedule, start] of after) {
          assert.strictEqual(schedule.status, 200, schedule.text)
          assert.strictEqual(start.status, 200, start.text)
        }
        yield* holdAllShards([first.applicationName])

        // Nothing lost, nothing twice: each task holds its four events, in order.
        for (const id of tasks) {
          const task = yield* get(first.base, `/tasks/${id}`)
          assert.strictEqual(task.version, 4)
        }
        const rows = yield* sql<{ readonly stream: string; readonly types: string }>`
          select stream, string_agg(event_type, ',' order by stream_version) as types
          from evently_events group by stream order by stream`
        assert.deepStrictEqual(
          rows.map((row) => [row.stream, row.types]),
          tasks.map((id) => [`task-${id}`, "Created,Assigned,Scheduled,Started"]).toSorted()
        )
      }).pipe(Effect.scoped),
    180_000
  )
})
