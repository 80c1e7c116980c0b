import { assert, layer } from "@effect/vitest"
import { PgConfig, PgEventStore, PgSchema } from "@evently/postgres"
import { EventStore, ExpectedVersion } from "@evently/store"
import { TestDatabase } from "@evently/testing"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as SqlClient from "effect/sql/SqlClient"
import * as Stream from "effect/Stream"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

const script = (name: string) => fileURLToPath(new URL(`../${name}.ts`, import.meta.url))

/** The test database's own URL: the server `PgConfig.url` names, with the database replaced. */
const databaseUrl = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const [row] = yield* sql<{ name: string }>`select current_database() as name`
  const url = new URL(Redacted.value(yield* Effect.orDie(PgConfig.url)))
  url.pathname = `/${row!.name}`
  return url.toString()
})

/** A real child process running one of the example's scripts, on the test database. */
const run = (name: "tail" | "update", args: ReadonlyArray<string>, url: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = spawn(process.execPath, [script(name), ...args], {
        env: { ...process.env, DATABASE_URL: url },
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

const database = Layer.provideMerge(PgSchema.layerMigrate, TestDatabase.layer())
const store = PgEventStore.layer().pipe(Layer.provideMerge(database))

layer(store, { excludeTestServices: true, timeout: "90 seconds" })("cats (two real processes on Postgres)", (it) => {
  it.effect(
    "update: two processes load version 1; the first to press Enter wins, the second exits 1 on a conflict",
    () =>
      Effect.gen(function* () {
        const es = yield* EventStore.EventStore
        const url = yield* databaseUrl
        yield* es.append("cat-tom", [{ type: "Adopted", data: { name: "tom" } }], {
          expected: ExpectedVersion.NoStream
        })

        const first = yield* run("update", ["tom"], url)
        const second = yield* run("update", ["tom"], url)
        yield* Effect.all(
          [first.waitFor("Loaded cat-tom at version 1"), second.waitFor("Loaded cat-tom at version 1")],
          {
            concurrency: "unbounded"
          }
        )
        yield* Effect.all([first.waitFor("Press Enter"), second.waitFor("Press Enter")], { concurrency: "unbounded" })

        yield* first.pressEnter
        yield* first.waitFor("Appended Fed to cat-tom: now at version 2")
        assert.strictEqual(yield* first.exitCode, 0)

        yield* second.pressEnter
        assert.strictEqual(yield* second.exitCode, 1)
        assert.include(
          second.output.stderr,
          "Conflict: cat-tom was at version 1 when you loaded it, but it is now at version 2 — reload and try again"
        )
        assert.notInclude(second.output.stdout, "Appended")

        const events = yield* Stream.runCollect(es.readStream("cat-tom"))
        assert.deepStrictEqual(
          events.map((event) => [event.streamVersion, event.type, event.data]),
          [
            [1, "Adopted", { name: "tom" }],
            [2, "Fed", { food: "tuna" }]
          ]
        )
      }).pipe(Effect.scoped)
  )

  it.effect("tail prints the history, then an event appended after it started, as it happens", () =>
    Effect.gen(function* () {
      const es = yield* EventStore.EventStore
      const url = yield* databaseUrl
      const tail = yield* run("tail", [], url)
      yield* tail.waitFor("Tailing every cat's events")
      yield* tail.waitFor('cat-tom v2 Fed {"food":"tuna"}')

      const felix = `felix${crypto.randomUUID().slice(0, 8)}`
      const appended = yield* es.append(`cat-${felix}`, [{ type: "Adopted", data: { name: felix } }])
      yield* tail.waitFor(`cat-${felix} v1 Adopted {"name":"${felix}"} (position ${appended.positions[0]})`)
      assert.strictEqual(tail.output.code, undefined, "tail keeps running")
      // The tail is ephemeral: it leaves no checkpoint row behind, however often it runs.
      const sql = yield* SqlClient.SqlClient
      const [rows] = yield* sql<{ count: number }>`select count(*)::int as count from evently_checkpoints`
      assert.strictEqual(rows!.count, 0)
    }).pipe(Effect.scoped)
  )
})
