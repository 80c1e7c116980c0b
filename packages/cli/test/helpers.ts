import { PgConfig } from "@evently/postgres"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as SqlClient from "effect/sql/SqlClient"
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

/** The `evently` executable as the workspace runs it: its TypeScript source, on this Node. */
export const bin = fileURLToPath(new URL("../src/bin.ts", import.meta.url))

/** The fixture config module (a `task` codec and machine). */
export const fixtureConfig = fileURLToPath(new URL("./fixtures/evently.config.ts", import.meta.url))

/** The connection string of the database the test's client is on, for the child processes. */
export const databaseUrl = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const [row] = yield* sql<{ database: string }>`select current_database() as database`
  const url = new URL(Redacted.value(yield* PgConfig.url))
  url.pathname = `/${row!.database}`
  return url.toString()
})

/** How a run of `evently` ended. */
export interface Ran {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** A running `evently`: its output so far, and its end. */
export interface Running {
  readonly child: ChildProcess
  readonly output: { stdout: string; stderr: string }
  readonly exit: Effect.Effect<Ran>
}

/** Starts `evently args` with `DATABASE_URL` set to `url` and no terminal (stdin is a closed pipe). */
export const start = (url: string, args: ReadonlyArray<string>): Running => {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, DATABASE_URL: url, NO_COLOR: "1" },
    stdio: ["pipe", "pipe", "pipe"]
  })
  child.stdin!.end()
  const output = { stdout: "", stderr: "" }
  child.stdout!.on("data", (chunk: Buffer) => (output.stdout += chunk.toString()))
  child.stderr!.on("data", (chunk: Buffer) => (output.stderr += chunk.toString()))
  const closed = new Promise<number | null>((resolve) => child.on("close", resolve))
  return {
    child,
    output,
    exit: Effect.promise(() => closed).pipe(Effect.map((code) => ({ code, ...output })))
  }
}

/** Runs `evently args` to its end. */
export const evently = (url: string, ...args: ReadonlyArray<string>): Effect.Effect<Ran> => start(url, args).exit

/** Waits until `read()` satisfies `done` (checking every 20 ms), for at most 20 seconds. */
export const until = <A>(read: () => A, done: (value: A) => boolean, what: string): Effect.Effect<A> =>
  Effect.sync(read).pipe(
    Effect.repeat({ until: done, schedule: Schedule.spaced("20 millis") }),
    Effect.timeoutOrElse({
      duration: "20 seconds",
      orElse: () => Effect.die(new Error(`Timed out waiting for ${what}; last seen: ${String(read())}`))
    })
  )
