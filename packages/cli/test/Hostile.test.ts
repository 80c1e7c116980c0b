import { assert, layer } from "@effect/vitest"
import * as Cli from "@evently/cli/Cli"
import * as ExitCode from "@evently/cli/ExitCode"
import { PgSchema } from "@evently/postgres"
import { TestDatabase } from "@evently/testing"
import type * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as SqlClient from "effect/sql/SqlClient"
import * as Terminal from "effect/Terminal"
import { TerminalCapabilities } from "effect/cli"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { databaseUrl, fixtureConfig } from "./helpers.ts"

const layerDatabase = Layer.effectDiscard(PgSchema.migrate).pipe(Layer.provideMerge(TestDatabase.layer()))

// A terminal whose keys the test types: `shown` completes when the question is on the screen.
const scriptedTerminal = Effect.gen(function* () {
  const keys = yield* Queue.unbounded<Terminal.UserInput, Cause.Done>()
  const shown = yield* Deferred.make<string>()
  const terminal = Terminal.make({
    columns: Effect.succeed(120),
    rows: Effect.succeed(40),
    size: Effect.die("unused"),
    readInput: Effect.succeed(keys),
    readLine: Effect.die("unused"),
    display: (text) => Effect.asVoid(Deferred.succeed(shown, text))
  })
  const type = (key: string) =>
    Queue.offer(keys, { input: Option.some(key), key: { name: key, ctrl: false, meta: false, shift: false } })
  return { terminal, shown: Deferred.await(shown), type }
})

// `Cli.run` in this process, on the scripted terminal, its console captured.
const runOn = (terminal: Terminal.Terminal, args: ReadonlyArray<string>) => {
  const out: Array<string> = []
  const err: Array<string> = []
  return Cli.run(args).pipe(
    Effect.provideService(Terminal.Terminal, terminal),
    Effect.provide(Cli.layerNode),
    Effect.provideService(Console.Console, {
      ...globalThis.console,
      log: (...a: ReadonlyArray<unknown>) => out.push(a.join(" ")),
      error: (...a: ReadonlyArray<unknown>) => err.push(a.join(" "))
    }),
    Effect.provideService(TerminalCapabilities.TerminalCapabilities, {
      canColor: false,
      canAnimate: false,
      canPrompt: true
    }),
    Effect.map((code) => ({ code, stdout: out.join("\n"), stderr: err.join("\n") }))
  )
}

const park = (subscription: string, error: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql`insert into evently_parked
      (subscription, partition, position, transaction_id, event_id, stream, event_type, error)
      values (${subscription}, 0, 1, '1'::xid8, gen_random_uuid(), 'late-1', 'Created', ${error})`
  })

const parkedErrors = (subscription: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ error: string }>`select error from evently_parked
      where subscription = ${subscription} order by id`
    return rows.map((row) => row.error)
  })

layer(layerDatabase, { excludeTestServices: true, timeout: "60 seconds" })(
  "evently on hostile input and interleavings",
  (it) => {
    for (const command of ["drop", "retry"] as const) {
      it.effect(`parked ${command} changes only the rows it asked about, not those parked while it asked`, () =>
        Effect.gen(function* () {
          const url = yield* databaseUrl
          const subscription = `late-${command}`
          yield* park(subscription, "asked about")
          const { shown, terminal, type } = yield* scriptedTerminal
          const running = yield* Effect.forkChild(runOn(terminal, ["--url", url, "parked", command, subscription]))
          assert.include(yield* shown, "1 parked")
          // Parked after the question showed 1 row, before the answer.
          yield* park(subscription, "parked while it asked")
          yield* type("y")
          const ran = yield* Fiber.join(running)
          assert.strictEqual(ran.code, ExitCode.Ok, ran.stderr)
          assert.deepStrictEqual(yield* parkedErrors(subscription), ["parked while it asked"])
        })
      )
    }

    it.effect("names like Object members (constructor, toString) are not codecs, machines or projections", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const url = yield* databaseUrl
        yield* sql`insert into evently_events (stream, category, stream_version, event_id, event_type, data, recorded_at)
        values ('constructor-1', 'constructor', 1, gen_random_uuid(), 'Created', '{"title":"x"}', now()),
          ('toString-1', 'toString', 1, gen_random_uuid(), 'Created', '{"title":"y"}', now())`
        const { terminal } = yield* scriptedTerminal
        const verified = yield* runOn(terminal, ["--url", url, "--config", fixtureConfig, "verify", "--json"])
        assert.strictEqual(verified.code, ExitCode.Ok, verified.stderr)
        assert.deepStrictEqual(JSON.parse(verified.stdout), { checked: 0, unchecked: 2, failures: [] })
        for (const name of ["constructor", "toString"]) {
          const diagram = yield* runOn(terminal, ["--config", fixtureConfig, "diagram", name])
          assert.strictEqual(diagram.code, ExitCode.NotFound, diagram.stderr)
          const rebuilt = yield* runOn(terminal, ["--url", url, "--config", fixtureConfig, "rebuild", name])
          assert.strictEqual(rebuilt.code, ExitCode.NotFound, rebuilt.stderr)
        }
      })
    )

    it.effect("a negative limit or a port out of range is a usage error, not a database or listen failure", () =>
      Effect.gen(function* () {
        const url = yield* databaseUrl
        const { terminal } = yield* scriptedTerminal
        for (const args of [
          ["streams", "--limit", "-1"],
          ["read", "task-1", "--limit", "0"],
          ["explore", "--port", "70000"]
        ]) {
          const ran = yield* runOn(terminal, ["--url", url, ...args])
          assert.strictEqual(ran.code, ExitCode.Usage, `${args.join(" ")}: ${ran.stderr}`)
        }
        const fine = yield* runOn(terminal, ["--url", url, "streams", "--limit", "1", "--json"])
        assert.strictEqual(fine.code, ExitCode.Ok, fine.stderr)
      })
    )

    it.effect("a config module with a table prefix PgSchema refuses is a config problem (exit 6), not a crash", () =>
      Effect.gen(function* () {
        const url = yield* databaseUrl
        const dir = mkdtempSync(join(tmpdir(), "evently-config-"))
        const file = join(dir, "evently.config.mjs")
        writeFileSync(file, 'export default { tablePrefix: "Bad-Prefix" }\n')
        const { terminal } = yield* scriptedTerminal
        const ran = yield* runOn(terminal, ["--url", url, "--config", file, "status"])
        rmSync(dir, { recursive: true })
        assert.strictEqual(ran.code, ExitCode.Unavailable, ran.stderr)
        assert.include(ran.stderr, "tablePrefix: Invalid table prefix")
      })
    )

    it.effect("a position beyond a Postgres bigint is a usage error, not a database failure", () =>
      Effect.gen(function* () {
        const url = yield* databaseUrl
        const { terminal } = yield* scriptedTerminal
        const ran = yield* runOn(terminal, ["--url", url, "rebase", "nobody", "after", "9223372036854775808", "--yes"])
        assert.strictEqual(ran.code, ExitCode.Usage, ran.stderr)
        assert.include(ran.stderr, "an integer from 0 to 9223372036854775807")
        const largest = yield* runOn(terminal, [
          "--url",
          url,
          "rebase",
          "nobody",
          "after",
          "9223372036854775807",
          "--yes"
        ])
        assert.strictEqual(largest.code, ExitCode.NotFound, largest.stderr)
      })
    )
  }
)
