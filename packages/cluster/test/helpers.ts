/**
 * What the cluster process tests share: a migrated database of the test's own, free ports, runner and client child
 * processes, and reads of which process holds advisory (shard) locks.
 */
import { PgEventStore, PgSchema } from "@evently/postgres"
import { TestDatabase } from "@evently/testing"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as SqlClient from "effect/sql/SqlClient"
import { spawn, type ChildProcess } from "node:child_process"
import { createServer } from "node:net"
import { fileURLToPath } from "node:url"

/** A database of its own, migrated, with the Postgres event store on it. */
export const layerStore = PgEventStore.layer().pipe(
  Layer.provideMerge(
    PgSchema.layerMigrate.pipe(Layer.orDie, Layer.provideMerge(TestDatabase.layer({ maxConnections: 6 })))
  )
)

/** A name no other test uses (the cluster's table prefix). */
export const unique = (label: string) => `${label}_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`

/** A TCP port nothing listens on (at the time of the call). */
export const freePort = Effect.callback<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** The name of the test's database, which the child processes connect to. */
export const databaseName = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ readonly name: string }>`select current_database() as name`
  return rows[0]!.name
}).pipe(Effect.orDie)

/** A child process of the test: its output so far, a promise of each line it prints, and SIGKILL. */
export interface Child {
  readonly pid: number
  readonly output: () => string
  readonly line: (prefix: string) => Promise<string>
  readonly exited: Promise<number | null>
  readonly kill: () => void
}

const spawnChild = (script: string, env: Record<string, string>): Child => {
  const child: ChildProcess = spawn(process.execPath, [fileURLToPath(new URL(script, import.meta.url))], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let output = ""
  const waiting: Array<{ readonly prefix: string; readonly resolve: (line: string) => void }> = []
  const check = () => {
    for (const wait of waiting.slice()) {
      const line = output.split("\n").find((candidate) => candidate.startsWith(wait.prefix))
      if (line !== undefined) {
        waiting.splice(waiting.indexOf(wait), 1)
        wait.resolve(line)
      }
    }
  }
  child.stdout!.on("data", (chunk: Buffer) => {
    output += chunk.toString()
    check()
  })
  child.stderr!.on("data", (chunk: Buffer) => {
    output += chunk.toString()
  })
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  return {
    pid: child.pid!,
    output: () => output,
    line: (prefix) =>
      new Promise<string>((resolve, reject) => {
        waiting.push({ prefix, resolve })
        check()
        void exited.then((code) => reject(new Error(`${script} exited (${code}) before '${prefix}':\n${output}`)))
      }),
    exited,
    kill: () => child.kill("SIGKILL")
  }
}

/** Starts a child process, killed when the scope closes. */
export const child = (script: string, env: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.sync(() => spawnChild(script, env)),
    (started) => Effect.sync(started.kill)
  )

/** Waits for a line starting with `prefix` (failing with the child's output if it exits first). */
export const lineOf = (started: Child, prefix: string) => Effect.promise(() => started.line(prefix))

/** Starts a runner on a free port and waits until it has joined the cluster. */
export const runner = (database: string, prefix: string, env: Record<string, string> = {}) =>
  Effect.gen(function* () {
    const port = yield* freePort
    const started = yield* child("./fixtures/runnerProcess.ts", {
      EVENTLY_WORKER_DATABASE: database,
      CLUSTER_PREFIX: prefix,
      RUNNER_PORT: String(port),
      ...env
    })
    yield* lineOf(started, "ready")
    return { ...started, port, applicationName: `runner-${port}` }
  })

/** The advisory locks each runner holds now, by its application name. */
export const advisoryLocksByRunner = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ readonly application: string; readonly locks: number }>`
    select a.application_name as application, count(*)::int as locks
    from pg_locks l join pg_stat_activity a on a.pid = l.pid
    where l.locktype = 'advisory' and l.granted and a.datname = current_database()
    group by a.application_name`
  return Object.fromEntries(rows.map((row) => [row.application, row.locks])) as Record<string, number>
}).pipe(Effect.orDie)

/**
 * Waits until the runners (by application name) hold at least `shards` advisory locks between them, each some: the
 * shards have settled, and no rebalance moves a shard (or the singleton on it) while the test runs.
 */
export const settled = (names: ReadonlyArray<string>, shards: number) =>
  advisoryLocksByRunner.pipe(
    Effect.map((locks) => names.map((name) => locks[name] ?? 0)),
    Effect.repeat({
      schedule: Schedule.spaced("100 millis"),
      until: (counts) => counts.every((count) => count > 0) && counts.reduce((a, b) => a + b, 0) >= shards
    }),
    Effect.timeoutOrElse({
      duration: "60 seconds",
      orElse: () => Effect.die(new Error(`the runners' shard locks did not settle within 60 seconds`))
    })
  )

/** Repeats `read` every 100 ms until `done` holds of its result (at most `timeout`), and returns that result. */
export const waitFor = <A, E, R>(
  read: Effect.Effect<A, E, R>,
  done: (a: A) => boolean,
  timeout: Duration.Input = "60 seconds"
) =>
  read.pipe(
    Effect.repeat({ schedule: Schedule.spaced("100 millis"), until: done }),
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () =>
        Effect.flatMap(read, (last) =>
          Effect.die(new Error(`still not done after ${String(timeout)}: ${JSON.stringify(last)}`))
        )
    })
  )
