import { assert, layer } from "@effect/vitest"
import * as Cli from "@evently/cli/Cli"
import * as ExitCode from "@evently/cli/ExitCode"
import { PgEventStore, PgSchema, PgSubscriptions } from "@evently/postgres"
import * as PgProjections from "@evently/postgres/PgProjections"
import { EventStore, Subscriptions } from "@evently/store"
import { TestDatabase } from "@evently/testing"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as SqlClient from "effect/sql/SqlClient"
import { TerminalCapabilities } from "effect/cli"
import { JobStates } from "./fixtures/evently.config.ts"
import { databaseUrl, evently, fixtureConfig, start, until } from "./helpers.ts"

const layerDatabase = Layer.mergeAll(
  PgEventStore.layer(),
  PgSubscriptions.layer({ lockRetryInterval: "100 millis", reconnectDelay: "100 millis" })
).pipe(Layer.provideMerge(TestDatabase.layer()))

const append = (stream: string, ...types: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const store = yield* EventStore.EventStore
    const result = yield* store.append(
      stream,
      types.map((type) => ({ type, data: type === "Created" ? { title: `${stream} ${type}` } : {} }))
    )
    return result.positions
  })

const checkpointOf = (name: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ pos: string }>`select position::text as pos from evently_checkpoints
      where subscription = ${name} order by partition`
    return rows.map((row) => row.pos)
  })

// `Cli.run` in this process, its console captured and no terminal: for what a child process would only make slower
// (the bin around `Cli.run` is covered by the child-process tests).
const runInProcess = (args: ReadonlyArray<string>, out: Array<string>, err: Array<string>) =>
  Cli.run(args).pipe(
    Effect.provide(Cli.layerNode),
    Effect.provideService(Console.Console, {
      ...globalThis.console,
      log: (...a: ReadonlyArray<unknown>) => out.push(a.join(" ")),
      error: (...a: ReadonlyArray<unknown>) => err.push(a.join(" "))
    }),
    Effect.provideService(TerminalCapabilities.TerminalCapabilities, {
      canColor: false,
      canAnimate: false,
      canPrompt: false
    })
  )

const inProcess = (...args: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const out: Array<string> = []
    const err: Array<string> = []
    const code = yield* runInProcess(args, out, err)
    return { code, stdout: out.join("\n"), stderr: err.join("\n") }
  })

layer(layerDatabase, { excludeTestServices: true, timeout: "120 seconds" })("evently", (it) => {
  it.effect("migrate --dry-run prints the SQL and creates nothing; migrate runs it; --json parses", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const url = yield* databaseUrl
      const tables = sql<{ n: number }>`select count(*)::int as n from pg_class where relname like 'evently%'`
      const dry = yield* evently(url, "migrate", "--dry-run")
      assert.strictEqual(dry.code, ExitCode.Ok, dry.stderr)
      assert.match(dry.stdout, /-- 0001_events_and_streams\ncreate table "evently_streams"/)
      assert.match(dry.stdout, /create table "evently_events" \(/)
      assert.match(dry.stdout, /-- 0004_stream_transaction_ids\nalter table "evently_streams" add column/)
      assert.strictEqual((yield* tables)[0]!.n, 0)

      const migrated = yield* evently(url, "migrate", "--json")
      assert.strictEqual(migrated.code, ExitCode.Ok, migrated.stderr)
      assert.deepStrictEqual(
        (JSON.parse(migrated.stdout) as { applied: Array<{ id: number; name: string }> }).applied.map(
          (m) => `${String(m.id).padStart(4, "0")}_${m.name}`
        ),
        Object.keys(PgSchema.migrations)
      )
      assert.isAbove((yield* tables)[0]!.n, 0)
    })
  )

  it.effect("status shows the lag of a stopped subscription, as a table and as JSON", () =>
    Effect.gen(function* () {
      yield* PgSchema.migrate
      const sql = yield* SqlClient.SqlClient
      const subs = yield* Subscriptions.Subscriptions
      const handled = yield* append("task-1", "Created", "Started")
      const worker = yield* subs.run("lagging", () => Effect.void, { categories: ["task"] }).pipe(Effect.forkScoped)
      yield* subs.waitUntilCaughtUp("lagging")
      yield* Fiber.interrupt(worker)
      const behind = yield* append("task-2", "Created", "Started", "Finished")
      yield* append("note-1", "Written")
      yield* sql`update evently_events set recorded_at = now() - interval '95 seconds' where position = ${behind[0]!}`
      const url = yield* databaseUrl

      const table = yield* evently(url, "status")
      assert.strictEqual(table.code, ExitCode.Ok, table.stderr)
      const [header, row] = table.stdout.split("\n")
      assert.deepStrictEqual(header!.split(/\s{2,}/).slice(0, 6), [
        "SUBSCRIPTION",
        "PART",
        "CHECKPOINT",
        "LAG",
        "LAG AGE",
        "PARKED"
      ])
      const cells = row!.trim().split(/\s{2,}/)
      assert.deepStrictEqual(cells.slice(0, 4), ["lagging", "0/1", String(handled[1]!), "3"])
      // The oldest unhandled event was recorded 95 s before the run (and the run takes a moment to start).
      const age = /^(\d+)m (\d\d)s$/.exec(cells[4]!)
      assert.isNotNull(age, cells[4])
      assert.isAtLeast(Number(age![1]) * 60 + Number(age![2]), 95)
      assert.isBelow(Number(age![1]) * 60 + Number(age![2]), 150)
      assert.deepStrictEqual(cells.slice(6, 8), ["-", "none"])

      const json = yield* evently(url, "status", "--json")
      assert.strictEqual(json.code, ExitCode.Ok, json.stderr)
      const report = JSON.parse(json.stdout) as {
        partitions: Array<{ subscription: string; lagEvents: number; lagSeconds: number; worker?: unknown }>
      }
      const [partition] = report.partitions.filter((p) => p.subscription === "lagging")
      assert.strictEqual(partition!.lagEvents, 3)
      assert.isAtLeast(partition!.lagSeconds, 95)
      assert.isBelow(partition!.lagSeconds, 150)
      assert.isUndefined(partition!.worker)

      // --watch --json: a document per refresh, until interrupted.
      const frames: Array<string> = []
      const watching = yield* runInProcess(
        ["--url", url, "status", "--watch", "--interval", "1", "--json"],
        frames,
        []
      ).pipe(Effect.forkScoped)
      yield* until(
        () => frames.length,
        (n) => n >= 2,
        "two refreshes"
      )
      yield* Fiber.interrupt(watching)
      for (const frame of frames.slice(0, 2)) {
        const watched = JSON.parse(frame) as { partitions: Array<{ subscription: string; lagEvents: number }> }
        assert.deepStrictEqual(
          watched.partitions.filter((p) => p.subscription === "lagging").map((p) => p.lagEvents),
          [3]
        )
      }
    }).pipe(Effect.scoped)
  )

  it.effect("tail prints the events appended after it started, as JSON lines, and leaves no checkpoint row", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* append("task-3", "Created")
        const tail = start(yield* databaseUrl, ["tail", "--category", "task", "--json"])
        yield* until(
          () => tail.output.stderr,
          (text) => text.includes("tailing from"),
          "the tail to start"
        )
        const first = yield* append("task-4", "Created")
        yield* append("note-2", "Written")
        const second = yield* append("task-4", "Started")
        yield* until(
          () => tail.output.stdout.split("\n").filter((line) => line !== "").length,
          (n) => n >= 2,
          "two events"
        )
        const [live] = yield* sql<{ n: number }>`select count(*)::int as n from evently_checkpoints
        where subscription like 'evently-tail-%'`
        tail.child.kill("SIGINT")
        const ended = yield* tail.exit
        assert.strictEqual(ended.code, ExitCode.Interrupted, ended.stderr)
        const events = ended.stdout
          .split("\n")
          .filter((line) => line !== "")
          .map((line) => JSON.parse(line) as { position: string; stream: string; type: string; data: unknown })
        assert.deepStrictEqual(
          events.map((e) => [e.position, e.stream, e.type]),
          [
            [String(first[0]!), "task-4", "Created"],
            [String(second[0]!), "task-4", "Started"]
          ]
        )
        assert.deepStrictEqual(events[0]!.data, { title: "task-4 Created" })
        assert.strictEqual(live!.n, 0)

        // --from <position>: the events after it (of the filter), then live.
        const out: Array<string> = []
        const fromPosition = yield* runInProcess(
          ["--url", yield* databaseUrl, "tail", "--from", String(first[0]!), "--type", "Started", "--json"],
          out,
          []
        ).pipe(Effect.forkScoped)
        const [after] = yield* until(
          () => out.flatMap((chunk) => chunk.split("\n")),
          (lines) => lines.length >= 1,
          "the tail from a position"
        )
        yield* Fiber.interrupt(fromPosition)
        assert.strictEqual((JSON.parse(after!) as { position: string }).position, String(second[0]!))
      })
    )
  )

  it.effect("verify reports each stored row that no longer decodes, and exits with Findings", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const [badData] = yield* append("task-5", "Created")
      const [unknownType] = yield* append("task-6", "Created")
      yield* sql`update evently_events set data = '{"title": 5}'::jsonb where position = ${badData!}`
      yield* sql`update evently_events set event_type = 'Renamed' where position = ${unknownType!}`
      const [unreadable] = yield* append("task-7", "Created")
      yield* sql`update evently_events set metadata = 'null'::jsonb where position = ${unreadable!}`
      const [counts] = yield* sql<{ task: number; other: number }>`select
        count(*) filter (where category in ('task', 'job'))::int as task,
        count(*) filter (where category not in ('task', 'job'))::int as other
        from evently_events`
      const url = yield* databaseUrl

      const json = yield* evently(url, "verify", "--config", fixtureConfig, "--json")
      assert.strictEqual(json.code, ExitCode.Findings, json.stderr)
      const report = JSON.parse(json.stdout) as {
        checked: number
        unchecked: number
        failures: Array<{ position: string; stream: string; type?: string; schemaVersion?: number; error: string }>
      }
      // The unreadable row is not checked: it never reaches a codec.
      assert.strictEqual(report.checked, counts!.task - 1)
      assert.strictEqual(report.unchecked, counts!.other)
      assert.deepStrictEqual(
        report.failures.map((f) => [f.position, f.stream, f.type, f.schemaVersion]),
        [
          [String(badData!), "task-5", "Created", 1],
          [String(unknownType!), "task-6", "Renamed", 1],
          // Not even a stored event: no type or schema version is reported for it.
          [String(unreadable!), "task-7", undefined, undefined]
        ]
      )
      assert.match(report.failures[0]!.error, /title/)
      assert.match(report.failures[2]!.error, /metadata null is not/)

      const table = yield* evently(url, "verify", "--config", fixtureConfig)
      assert.strictEqual(table.code, ExitCode.Findings)
      assert.match(table.stdout, new RegExp(`^\\s*${badData!}\\s+task-5\\s+Created\\s+1\\s+`, "m"))
      assert.match(table.stdout, new RegExp(`^\\s*${unreadable!}\\s+task-7\\s+-\\s+-\\s+its metadata null`, "m"))
      assert.include(table.stdout, `${counts!.task - 1} event(s) checked, 3 do not decode`)
      assert.include(table.stderr, "3 stored event(s) do not decode")
    })
  )

  it.effect("rebase refuses without a terminal and without --yes, and moves the checkpoint with --yes", () =>
    Effect.gen(function* () {
      const url = yield* databaseUrl
      const before = yield* checkpointOf("lagging")
      assert.notDeepEqual(before, ["0"])
      const refused = yield* evently(url, "rebase", "lagging", "beginning")
      assert.strictEqual(refused.code, ExitCode.Refused)
      assert.include(refused.stderr, "pass --yes")
      assert.deepStrictEqual(yield* checkpointOf("lagging"), before)

      const done = yield* evently(url, "rebase", "lagging", "beginning", "--yes", "--json")
      assert.strictEqual(done.code, ExitCode.Ok, done.stderr)
      const moved = JSON.parse(done.stdout) as { partitions: Array<{ checkpoint: { position: string } }> }
      assert.deepStrictEqual(
        moved.partitions.map((p) => p.checkpoint.position),
        ["0"]
      )
      assert.deepStrictEqual(yield* checkpointOf("lagging"), ["0"])

      const unknown = yield* inProcess("--url", url, "rebase", "nobody", "end", "--yes")
      assert.strictEqual(unknown.code, ExitCode.NotFound)
      assert.include(unknown.stderr, "No subscription 'nobody'")
    })
  )

  it.effect("parked: list as JSON, retry needs confirmation, drop deletes the row it names", () =>
    Effect.gen(function* () {
      const subs = yield* Subscriptions.Subscriptions
      const [, started] = yield* append("picky-1", "Created", "Started", "Created")
      const worker = yield* subs
        .run("picky", (event) => (event.type === "Started" ? Effect.fail("no Started here") : Effect.void), {
          categories: ["picky"],
          onError: Subscriptions.Skip
        })
        .pipe(Effect.forkScoped)
      yield* subs.waitUntilCaughtUp("picky")
      yield* Fiber.interrupt(worker)
      const url = yield* databaseUrl

      const listed = yield* inProcess("--url", url, "parked", "list", "picky", "--json")
      assert.strictEqual(listed.code, ExitCode.Ok, listed.stderr)
      const rows = JSON.parse(listed.stdout) as Array<{ id: string; position: string; type: string; error: string }>
      assert.deepStrictEqual(
        rows.map((r) => [r.position, r.type]),
        [[String(started!), "Started"]]
      )
      assert.include(rows[0]!.error, "no Started here")
      const refused = yield* inProcess("--url", url, "parked", "retry", "picky")
      assert.strictEqual(refused.code, ExitCode.Refused)
      const dropped = yield* inProcess("--url", url, "parked", "drop", "picky", "--id", rows[0]!.id, "--yes")
      assert.strictEqual(dropped.code, ExitCode.Ok, dropped.stderr)
      assert.deepStrictEqual(yield* subs.parked("picky"), [])
    }).pipe(Effect.scoped)
  )

  it.effect("streams and read: a category's streams, one stream backward, a missing stream is NotFound", () =>
    Effect.gen(function* () {
      const url = yield* databaseUrl
      const listed = yield* inProcess("--url", url, "streams", "--category", "task", "--json")
      assert.strictEqual(listed.code, ExitCode.Ok, listed.stderr)
      const streams = JSON.parse(listed.stdout) as Array<{ stream: string; category: string; version: number }>
      assert.deepStrictEqual(
        streams.find((s) => s.stream === "task-2"),
        { stream: "task-2", category: "task", version: 3 }
      )
      assert.isTrue(streams.every((s) => s.stream.startsWith("task-")))
      const read = yield* inProcess("--url", url, "read", "task-2", "--backward", "--limit", "2")
      assert.strictEqual(read.code, ExitCode.Ok, read.stderr)
      assert.deepStrictEqual(
        read.stdout
          .trim()
          .split("\n")
          .map((line) => line.trim().split(/\s{2,}/)[2]),
        ["task-2@3", "task-2@2"]
      )
      const missing = yield* inProcess("--url", url, "read", "task-none")
      assert.strictEqual(missing.code, ExitCode.NotFound)
    })
  )

  it.effect("diagram prints a configured machine as Mermaid; an unknown one is NotFound", () =>
    Effect.gen(function* () {
      const shown = yield* inProcess("diagram", "task", "--config", fixtureConfig)
      assert.strictEqual(shown.code, ExitCode.Ok, shown.stderr)
      assert.match(shown.stdout, /^stateDiagram-v2\n/)
      assert.include(shown.stdout, "s0 --> s1: Started")
      const unknown = yield* inProcess("diagram", "order", "--config", fixtureConfig)
      assert.strictEqual(unknown.code, ExitCode.NotFound)
      assert.include(unknown.stderr, "it has task")
    })
  )

  it.effect(
    "every command answers --help; a wrong command line is Usage, no database or config module Unavailable",
    () =>
      Effect.gen(function* () {
        for (const command of [
          [],
          ["migrate"],
          ["status"],
          ["tail"],
          ["streams"],
          ["read"],
          ["parked"],
          ["parked", "list"],
          ["parked", "retry"],
          ["parked", "drop"],
          ["rebase"],
          ["rebuild"],
          ["verify"],
          ["diagram"]
        ]) {
          const help = yield* inProcess(...command, "--help")
          assert.strictEqual(help.code, ExitCode.Ok, command.join(" "))
          assert.include(help.stdout, `evently ${command.join(" ")}`.trim(), command.join(" "))
          assert.include(help.stdout, "DESCRIPTION", command.join(" "))
        }
        const url = yield* databaseUrl
        for (const wrong of [
          ["bogus"],
          ["status", "--frobnicate"],
          ["rebase", "lagging", "sideways"],
          ["rebase", "lagging", "after"],
          ["tail", "--from", "yesterday"]
        ]) {
          const ran = yield* inProcess("--url", url, ...wrong)
          assert.strictEqual(ran.code, ExitCode.Usage, `${wrong.join(" ")}: ${ran.stdout}${ran.stderr}`)
        }
        const unreachable = yield* inProcess("--url", "postgres://postgres@127.0.0.1:1/none", "status")
        assert.strictEqual(unreachable.code, ExitCode.Unavailable)
        assert.include(unreachable.stderr, "No database at postgres://postgres@127.0.0.1:1/none")
        const noConfig = yield* inProcess("--url", url, "verify", "--config", "/nowhere/evently.config.ts")
        assert.strictEqual(noConfig.code, ExitCode.Unavailable)
        assert.include(noConfig.stderr, "/nowhere/evently.config.ts: no such file")
      })
  )

  it.effect("rebuild builds the projection again beside the active one, which it replaces with the same content", () =>
    Effect.gen(function* () {
      yield* PgSchema.migrate
      const sql = yield* SqlClient.SqlClient
      yield* append("job-1", "Created", "Started")
      yield* append("job-2", "Created")
      const running = yield* PgProjections.run(JobStates, { registryPollInterval: "100 millis" }).pipe(
        Effect.forkScoped
      )
      yield* PgProjections.waitUntilCaughtUp("job_states")
      yield* Fiber.interrupt(running)
      yield* append("job-2", "Started", "Finished")
      yield* append("job-3", "Created")
      const url = yield* databaseUrl

      const rebuilt = yield* evently(url, "rebuild", "job_states", "--config", fixtureConfig)
      assert.strictEqual(rebuilt.code, ExitCode.Ok, rebuilt.stderr)
      assert.match(rebuilt.stdout, /^rebuilt 'job_states' version 1 as build 2 in .+: active, tables job_states_v1b2$/m)
      // Without a terminal, progress comes as plain lines (as many as the rebuild lasted progress intervals).
      for (const line of rebuilt.stderr.split("\n").filter((l) => l !== "")) {
        assert.match(line, /^job_states v1: \d+\/\d+ events, \d+ ev\/s, ~.+ left$/)
      }
      assert.deepStrictEqual(
        (yield* PgProjections.builds("job_states")).map((b) => `v${b.version}b${b.build} ${b.state}`),
        ["v1b1 retired", "v1b2 active"]
      )
      // From scratch: each job's last event type and its number of events, folded from the log.
      const events = yield* sql<{ stream: string; type: string }>`select stream, event_type as type
        from evently_events where category = 'job' order by position`
      const expected = new Map<string, { state: string; events: number }>()
      for (const e of events) {
        expected.set(e.stream, { state: e.type, events: (expected.get(e.stream)?.events ?? 0) + 1 })
      }
      const served = yield* sql<{ stream: string; state: string; events: number }>`select stream, state, events
        from job_states order by stream`
      assert.deepStrictEqual(
        served.map((r) => [r.stream, r.state, r.events]),
        [...expected].sort(([a], [b]) => a.localeCompare(b)).map(([stream, e]) => [stream, e.state, e.events])
      )
      const status = yield* inProcess("--url", url, "status", "--json")
      const builds = (
        JSON.parse(status.stdout) as { partitions: Array<{ projection?: { build: number; state: string } }> }
      ).partitions.flatMap((p) => (p.projection === undefined ? [] : [`${p.projection.build} ${p.projection.state}`]))
      assert.deepStrictEqual(builds, ["1 retired", "2 active"])
    }).pipe(Effect.scoped)
  )
})
