/**
 * The example's scripts as real child processes, on the test's database.
 */
import { PgConfig } from "@evently/postgres"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as SqlClient from "effect/sql/SqlClient"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

export const script = (name: string) => fileURLToPath(new URL(`../${name}.ts`, import.meta.url))

/** The test database's own URL: the server `PgConfig.url` names, with the database replaced. */
export const databaseUrl = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const [row] = yield* sql<{ name: string }>`select current_database() as name`
  const url = new URL(Redacted.value(yield* Effect.orDie(PgConfig.url)))
  url.pathname = `/${row!.name}`
  return url.toString()
})

/** A real child process running one of the example's scripts, on the test database. */
export const run = (
  name: "tail" | "update" | "relay" | "consume",
  args: ReadonlyArray<string>,
  url: string,
  env: Record<string, string> = {}
) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = spawn(process.execPath, [script(name), ...args], {
        env: { ...process.env, ...env, DATABASE_URL: url },
        stdio: ["pipe", "pipe", "pipe"]
      })
      const output = { stdout: "", stderr: "", code: undefined as number | null | undefined }
      child.stdout.on("data", (chunk: Buffer) => void (output.stdout += chunk.toString()))
      child.stderr.on("data", (chunk: Buffer) => void (output.stderr += chunk.toString()))
      child.on("exit", (code) => void (output.code = code))
      /** Waits until the child's stdout (or stderr) contains `text`. */
      const waitFor = (text: string, where: "stdout" | "stderr" = "stdout") =>
        Effect.sync(() => output[where].includes(text)).pipe(
          Effect.repeat({ until: (found) => found, schedule: Schedule.spaced("50 millis") }),
          Effect.timeoutOrElse({
            duration: "30 seconds",
            orElse: () =>
              Effect.die(
                new Error(
                  `${name} never printed ${JSON.stringify(text)}; stdout:\n${output.stdout}\nstderr:\n${output.stderr}`
                )
              )
          })
        )
      const exitCode = Effect.sync(() => output.code).pipe(
        Effect.repeat({ until: (code) => code !== undefined, schedule: Schedule.spaced("50 millis") }),
        Effect.timeout("30 seconds")
      )
      const pressEnter = Effect.sync(() => void child.stdin.write("\n"))
      return { child, output, waitFor, exitCode, pressEnter }
    }),
    ({ child }) => Effect.sync(() => void child.kill("SIGKILL"))
  )
