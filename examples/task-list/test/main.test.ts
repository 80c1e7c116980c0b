import { assert, describe, it, layer } from "@effect/vitest"
import { Database } from "@evently/pglite"
import { PgConfig } from "@evently/postgres"
import { TestDatabase } from "@evently/testing"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as SqlClient from "effect/sql/SqlClient"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"

const mainPath = fileURLToPath(new URL("../main.ts", import.meta.url))

/** The environment with no database configured: no DATABASE_URL, no PG* variable, no EVENTLY_DATA_DIR. */
const withoutDatabase = (): NodeJS.ProcessEnv => {
  const env = { ...process.env }
  for (const name of [...Database.serverVariables, "EVENTLY_DATA_DIR"]) delete env[name]
  return env
}

/** Runs `node examples/task-list/main.ts` (what `pnpm example` runs) and collects its exit code and output. */
const runExample = (env: NodeJS.ProcessEnv) =>
  Effect.callback<{ readonly code: number; readonly stdout: string; readonly stderr: string }>((resume) => {
    const child = execFile(process.execPath, [mainPath], { env, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1
      resume(Effect.succeed({ code, stdout, stderr }))
    })
    return Effect.sync(() => child.kill("SIGKILL"))
  })

/** What every run must show: the story, the retried conflict, the refusal, the read model and the diagram. */
const assertStory = (stdout: string) => {
  assert.match(stdout, /#1 Start\s+v4 \[Started\]/)
  assert.match(stdout, /after 1 attempt\n/)
  assert.match(stdout, /after 2 attempts\n/)
  assert.match(stdout, /retried after: Stream 'task-[0-9a-f]{8}-1' expected version 4 but is at version 5/)
  assert.include(
    stdout,
    "#3 Start -> refused: Event type 'Started' may not follow [Created, Assigned] (#3 stays at v2)"
  )
  assert.match(
    stdout,
    /  ada\n    #3 Plan the offsite +open\n  grace\n    #1 Write the quarterly report +in progress, due 2030-04-15\n    #2 Review the budget +done, due 2030-02-28\n  \(unassigned\)\n    #4 Book the venue +open, due 2030-05-01\n/
  )
  assert.include(stdout, "stateDiagram-v2\n")
  assert.include(stdout, "s4 --> s6: Completed")
}

/** The timing breakdown's steps and total; asserts the line is there, every step is named, and the steps add up. */
const assertTiming = (stdout: string) => {
  const line = /^Timing: (.+) = (\d+) ms$/m.exec(stdout)
  assert.isNotNull(line, stdout)
  const steps = line![1]!.split(" + ").map((part) => {
    const step = /^(.+) (\d+) ms$/.exec(part)
    assert.isNotNull(step, part)
    return [step![1]!, Number(step![2])] as const
  })
  assert.deepStrictEqual(
    steps.map(([name]) => name),
    ["process start", "database start", "migrations", "the example", "shutdown"]
  )
  assert.strictEqual(
    steps.reduce((sum, [, ms]) => sum + ms, 0),
    Number(line![2])
  )
}

/** An event-type list with the events after the fourth sorted: the two racing commands land in either order. */
const raceSorted = (types: string) => {
  const list = types.split(",")
  return [...list.slice(0, 4), ...list.slice(4).toSorted()]
}

const runIdOf = (stdout: string) => {
  const match = /streams task-([0-9a-f]{8})-1 to -4/.exec(stdout)
  assert.isNotNull(match)
  return match![1]!
}

describe("pnpm example", () => {
  it.live("runs end to end on the embedded database when no database is configured", () =>
    Effect.gen(function* () {
      const { code, stdout, stderr } = yield* runExample(withoutDatabase())
      assert.strictEqual(code, 0, stderr)
      assert.include(stdout, "evently: using the embedded database (PGlite) in memory")
      assertStory(stdout)
      assertTiming(stdout)
    })
  )

  it.live("fails as the process's main fiber: the runtime logs the error and the exit code is 1", () =>
    Effect.gen(function* () {
      const url = "postgres://postgres@127.0.0.1:5432/evently_no_such_database"
      const { code, stdout, stderr } = yield* runExample({ ...withoutDatabase(), DATABASE_URL: url })
      assert.strictEqual(code, 1, `${stdout}\n${stderr}`)
      // NodeRuntime.runMain's report: the runtime's logger at level ERROR, with the cause down to Postgres's message.
      assert.match(`${stdout}${stderr}`, /ERROR \(#\d+\): effect\/sql\/SqlError: PgConnection: Failed to connect/)
      assert.include(`${stdout}${stderr}`, 'database "evently_no_such_database" does not exist')
      assert.notInclude(stdout, "Timing:")
    })
  )
})

layer(TestDatabase.layer(), { excludeTestServices: true, timeout: "120 seconds" })(
  "pnpm example with DATABASE_URL",
  (pg) => {
    pg.effect("runs on that server, twice, and its events and read model are in that database", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const [{ name }] = yield* sql<{ name: string }>`select current_database() as name`
        const server = new URL(Redacted.value(yield* PgConfig.url))
        server.pathname = `/${name}`
        const env = { ...withoutDatabase(), DATABASE_URL: server.toString() }

        const runs: Array<string> = []
        for (const _ of [1, 2]) {
          const { code, stdout, stderr } = yield* runExample(env)
          assert.strictEqual(code, 0, stderr)
          assert.include(stdout, `evently: using PostgreSQL at ${PgConfig.describe(Redacted.make(server.toString()))}`)
          assertStory(stdout)
          assertTiming(stdout)
          runs.push(runIdOf(stdout))
        }
        assert.notStrictEqual(runs[0], runs[1])

        for (const run of runs) {
          const events = yield* sql<{ stream: string; types: string }>`
          select stream, string_agg(event_type, ',' order by stream_version) as types from evently_events
          where stream like ${`task-${run}-%`} group by stream order by stream`
          // #1: the story, then the two racing commands in whichever order they won.
          assert.deepStrictEqual(
            events.map((row) => [row.stream, raceSorted(row.types)]),
            [
              [`task-${run}-1`, ["Created", "Assigned", "Scheduled", "Started", "Reassigned", "Rescheduled"]],
              [`task-${run}-2`, ["Created", "Scheduled", "Assigned", "Started", "Completed"]],
              [`task-${run}-3`, ["Created", "Assigned"]],
              [`task-${run}-4`, ["Created", "Scheduled"]]
            ]
          )
        }
        const [{ rows }] = yield* sql<{ rows: number }>`select count(*)::int as rows from tasks_by_assignee`
        assert.strictEqual(rows, 8)
      })
    )
  }
)
