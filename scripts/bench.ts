/**
 * `pnpm bench [--quick] [--only=w1,…] [--reps=N] [--seconds=S]`: evently against raw-SQL baselines on the same Postgres, in the same run.
 * Creates its own database on the server from DATABASE_URL / PG*, prints a Markdown table and writes the figures
 * as JSON under bench-results/ (kept out of git). The NATS relay's workload runs only when `--only` names `relay`
 * (it needs a NATS server with JetStream at NATS_URL). The cluster workloads (`cluster-hot`, `cluster-many`) start two
 * runner processes of their own on the bench database.
 */
import { PgClient } from "@effect/sql-pg"
import { NodeRuntime } from "@effect/platform-node"
import { PgConfig, PgSchema } from "@evently/postgres"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import type * as SqlError from "effect/sql/SqlError"
import { execFile } from "node:child_process"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { cpus } from "node:os"
import { type Measurement, measure } from "./bench/Measure.ts"
import { readScenarios, readWorkloads } from "./bench/ReadWorkloads.ts"
import { scenarios } from "./bench/Scenarios.ts"
import { clusterWorkloads } from "./bench/ClusterWorkloads.ts"
import { workloads } from "./bench/Workloads.ts"

const quick = process.argv.includes("--quick")
/** `--reps=N`: each workload's variants run N times, interleaved (R0, R1, evently, R0, R1, …); the table gives each
 * variant's median rep by events/s, and the median of its per-rep ratios to R0 and R1. */
const reps = Math.max(1, Number(process.argv.find((a) => a.startsWith("--reps="))?.slice("--reps=".length) ?? 1))
/** `--seconds=S`: every timed variant runs S seconds instead of its workload's default. */
const secondsOverride = process.argv.find((a) => a.startsWith("--seconds="))?.slice("--seconds=".length)
const only = process.argv
  .find((a) => a.startsWith("--only="))
  ?.slice("--only=".length)
  .split(",")

interface Row extends Measurement {
  readonly workload: string
  readonly concurrency: number
  readonly variant: string
  readonly vsR0: number | null
  readonly vsR1: number | null
  /** What the variant's post-run check verified (evently variants), or the scenario's own figures. */
  readonly check?: string | undefined
  readonly operationsPerSecond?: number | undefined
  readonly operationUnit?: string | undefined
  readonly extra?: Readonly<Record<string, number | string>> | undefined
  /** With `--reps`: every rep's events/s, in run order (the row gives the median one). */
  readonly reps?: ReadonlyArray<number> | undefined
  /** The workload's `compare`: this variant against another of the same workload (medians over reps). */
  readonly compared?: { readonly baseline: string; readonly ratio: number; readonly overheadMicros: number } | undefined
}

const versionOf = (pkg: string): string => {
  const path = new URL(`./node_modules/${pkg}/package.json`, import.meta.url)
  return (JSON.parse(readFileSync(path, "utf8")) as { version: string }).version
}

/** The figures `packages/nats/bench/relay.ts --json` prints: its code, run as a process of its own. */
interface RelayFigures {
  readonly events: number
  readonly live: number
  readonly bareRate: number
  readonly relayRate: number
  readonly p50: number
  readonly p99: number
}

/**
 * The relay workload (opt-in: `--only=relay`): commit-to-ack events/s of the NATS relay on a committed log against a
 * bare publish loop of the same messages with the same client, then the commit-to-ack latency of live events.
 */
const relayWorkload = (events: number) =>
  Effect.promise(
    () =>
      new Promise<RelayFigures>((resolve, reject) => {
        const script = new URL("../packages/nats/bench/relay.ts", import.meta.url).pathname
        execFile(process.execPath, [script, `--events=${events}`, "--json"], (error, stdout, stderr) => {
          const line = stdout.split("\n").findLast((l) => l.startsWith("{"))
          if (error !== null || line === undefined) reject(new Error(`${script} failed: ${error}\n${stderr}`))
          else resolve(JSON.parse(line) as RelayFigures)
        })
      })
  )

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : "–")
const ratio = (n: number | null) => (n === null ? "" : `${fmt(n * 100)}%`)
const comparedNote = (c: NonNullable<Row["compared"]>) =>
  `${fmt(c.ratio, 2)}× ${c.baseline}, ${c.overheadMicros >= 0 ? "+" : "−"}${fmt(Math.abs(c.overheadMicros))} µs/op`

const program = Effect.gen(function* () {
  const url = yield* PgConfig.url
  const database = `evently_bench_${process.pid}`
  // The admin connection lives only as long as each of its statements: one left idle for the whole run was seen to
  // hang the final drop (the statement never reached the server), which kept the process from exiting.
  const withAdmin = <A>(f: (admin: PgClient.PgClient) => Effect.Effect<A, SqlError.SqlError>) =>
    Effect.scoped(Effect.flatMap(PgClient.make({ url, maxConnections: 1 }), f))
  yield* withAdmin((admin) =>
    Effect.andThen(
      admin`drop database if exists ${admin(database)} with (force)`,
      admin`create database ${admin(database)}`
    )
  )
  yield* Effect.addFinalizer(() =>
    withAdmin((admin) => admin`drop database if exists ${admin(database)} with (force)`).pipe(
      Effect.timeout("30 seconds"),
      Effect.ignore
    )
  )
  const [server] = yield* withAdmin(
    (admin) => admin<{ version: string }>`select current_setting('server_version') as version`
  )

  const rows: Array<Row> = []
  const selected = [...workloads, ...clusterWorkloads, ...readWorkloads].filter(
    (w) => only === undefined || only.includes(w.id)
  )
  const selectedScenarios = [...scenarios, ...readScenarios].filter((s) => only === undefined || only.includes(s.id))
  const db = PgClient.layer({ url, database, maxConnections: 40 })
  yield* Effect.gen(function* () {
    for (const prefix of ["r0_", "r1_", "evently_"]) {
      yield* PgSchema.migrate.pipe(Effect.provideService(PgSchema.Tables, PgSchema.tableNames(prefix)))
    }
    for (const workload of selected) {
      for (const concurrency of workload.concurrency) {
        const runs: Record<string, Array<{ readonly result: Measurement; readonly check: string | undefined }>> = {}
        for (let rep = 0; rep < reps; rep++) {
          for (const [variant, { eventsPerOperation, prepare }] of Object.entries(workload.variants)) {
            const prepared = yield* prepare(concurrency)
            if (prepared.skip === true) continue
            const result = yield* measure({
              concurrency: prepared.workers ?? concurrency,
              seconds:
                secondsOverride !== undefined
                  ? Number(secondsOverride)
                  : quick
                    ? workload.seconds.quick
                    : workload.seconds.full,
              eventsPerOperation,
              operation: prepared.operation
            })
            const check = prepared.check === undefined ? undefined : yield* prepared.check
            ;(runs[variant] ??= []).push({ result, check })
            yield* Effect.logInfo(
              `${workload.id} c=${concurrency} ${variant}${reps > 1 ? ` rep ${rep + 1}` : ""}: ` +
                `${fmt(result.eventsPerSecond)} ev/s p99 ${fmt(result.p99Ms, 1)} ms` +
                (check === undefined ? "" : ` (checked: ${check})`)
            )
          }
        }
        // Each variant's median rep by events/s (the upper one of an even number).
        const medians = Object.fromEntries(
          Object.entries(runs).map(([variant, list]) => {
            const sorted = [...list].sort((a, b) => a.result.eventsPerSecond - b.result.eventsPerSecond)
            return [variant, sorted[Math.floor(sorted.length / 2)]!] as const
          })
        )
        /**
         * The ratio of a variant to a baseline: the median over reps of each rep's ratio to the baseline's rep run
         * just before it (the two share the machine's load of that moment, which moves more than the variants differ).
         */
        const versus = (variant: string, baseline: string): number | null => {
          const mine = runs[variant]
          const theirs = runs[baseline]
          if (mine === undefined || theirs === undefined || variant === baseline) return null
          const ratios = mine
            .map((run, rep) => run.result.eventsPerSecond / (theirs[rep]?.result.eventsPerSecond ?? Number.NaN))
            .sort((a, b) => a - b)
          return ratios[Math.floor(ratios.length / 2)]!
        }
        /** What the variant adds per operation (µs): the median over reps of 1/its rate − 1/the baseline's. */
        const overhead = (variant: string, baseline: string): number => {
          const perRep = runs[variant]!.map(
            (run, rep) =>
              1e6 / run.result.eventsPerSecond - 1e6 / (runs[baseline]?.[rep]?.result.eventsPerSecond ?? Number.NaN)
          ).sort((a, b) => a - b)
          return perRep[Math.floor(perRep.length / 2)]!
        }
        const compared = (variant: string) => {
          const baseline = workload.compare?.find((c) => c.variant === variant)?.baseline
          return baseline === undefined || runs[baseline] === undefined
            ? undefined
            : { baseline, ratio: versus(variant, baseline)!, overheadMicros: overhead(variant, baseline) }
        }
        for (const [variant, { check, result }] of Object.entries(medians)) {
          rows.push({
            workload: workload.title,
            concurrency,
            variant,
            ...result,
            vsR0: versus(variant, "R0"),
            vsR1: variant === "R0" ? null : versus(variant, "R1"),
            check,
            operationsPerSecond: result.operations / result.seconds,
            operationUnit: workload.operationUnit,
            compared: compared(variant),
            ...(reps > 1 ? { reps: runs[variant]!.map((run) => run.result.eventsPerSecond) } : {})
          })
        }
      }
    }
    for (const scenario of selectedScenarios) {
      const results = yield* scenario.run(quick)
      const r0 = results.find((r) => r.variant === "R0")?.measurement
      for (const { variant, measurement, extra } of results) {
        rows.push({
          workload: scenario.title,
          concurrency: 1,
          variant,
          ...measurement,
          vsR0: r0 && variant !== "R0" ? measurement.eventsPerSecond / r0.eventsPerSecond : null,
          vsR1: null,
          extra
        })
        yield* Effect.logInfo(
          `${scenario.id} ${variant}: ${fmt(measurement.eventsPerSecond)} ev/s p50 ${fmt(measurement.p50Ms, 1)} ms ` +
            `p99 ${fmt(measurement.p99Ms, 1)} ms ${JSON.stringify(extra)}`
        )
      }
    }
    // Closes what the variants opened (cluster runner processes, a cluster client) while the pool is still open.
  }).pipe(Effect.scoped, Effect.provide(db))
  const relay = only?.includes("relay") === true ? yield* relayWorkload(quick ? 5_000 : 20_000) : undefined
  if (relay !== undefined) yield* Effect.logInfo(`relay: ${JSON.stringify(relay)}`)

  const environment = {
    date: DateTime.formatIso(yield* DateTime.now),
    quick,
    reps,
    cores: cpus().length,
    cpu: cpus()[0]?.model ?? "unknown",
    node: process.version,
    effect: versionOf("effect"),
    sqlPg: versionOf("@effect/sql-pg"),
    postgres: server!.version
  }
  const header =
    `Run ${environment.date} · ${environment.cores} cores (${environment.cpu}) · Node ${environment.node} · ` +
    `effect ${environment.effect} · @effect/sql-pg ${environment.sqlPg} · PostgreSQL ${environment.postgres}` +
    (quick ? " · quick" : "") +
    (reps > 1 ? ` · median of ${reps} interleaved reps` : "") +
    (secondsOverride !== undefined ? ` · ${secondsOverride} s per variant` : "")
  const timedRows = rows.filter((r) => r.extra === undefined)
  const table = [
    "| workload | conc. | variant | events/s | p50 ms | p99 ms | CPU s/1k ev | vs R0 | vs R1 | notes |",
    "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ...timedRows.map(
      (r) =>
        `| ${r.workload} | ${r.concurrency} | ${r.variant} | ${fmt(r.eventsPerSecond)} | ${fmt(r.p50Ms, 2)} | ` +
        `${fmt(r.p99Ms, 2)} | ${fmt(r.cpuSecondsPer1k, 3)} | ${ratio(r.vsR0)} | ${ratio(r.vsR1)} | ` +
        `${[
          r.operationUnit === undefined ? "" : `${fmt(r.operationsPerSecond ?? Number.NaN)} ${r.operationUnit}s/s`,
          r.compared === undefined ? "" : comparedNote(r.compared),
          r.compared === undefined || r.check === undefined ? "" : r.check
        ]
          .filter((note) => note !== "")
          .join("; ")} |`
    )
  ]
  const catchUpRows = rows.filter((r) => r.extra !== undefined && "rssPeakMb" in r.extra)
  if (catchUpRows.length > 0) {
    table.push(
      "",
      "| workload | variant | events | events/s | CPU s/1k ev | RSS start / peak / end MB | vs R0 |",
      "| --- | --- | ---: | ---: | ---: | --- | ---: |",
      ...catchUpRows.map(
        (r) =>
          `| ${r.workload} | ${r.variant} | ${r.events} | ${fmt(r.eventsPerSecond)} | ${fmt(r.cpuSecondsPer1k, 3)} | ` +
          `${r.extra!["rssStartMb"]} / ${r.extra!["rssPeakMb"]} / ${r.extra!["rssEndMb"]} | ${ratio(r.vsR0)} |` +
          (r.extra!["unfinished"] === undefined ? "" : ` unfinished: ${r.extra!["unfinished"]} |`)
      )
    )
  }
  const liveRows = rows.filter((r) => r.extra !== undefined && "targetRate" in r.extra)
  if (liveRows.length > 0) {
    const num = (v: number | string | undefined, digits: number) => (typeof v === "number" ? fmt(v, digits) : "–")
    table.push(
      "",
      "| workload | variant | target / achieved ev/s | events | handler p50 ms | handler p99 ms | max ms | append p50 / p99 ms |",
      "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
      ...liveRows.map(
        (r) =>
          `| ${r.workload} | ${r.variant} | ${r.extra!["targetRate"]} / ${r.extra!["achievedRate"]} | ${r.events} | ` +
          `${fmt(r.p50Ms, 2)} | ${fmt(r.p99Ms, 2)} | ${num(r.extra!["maxMs"], 1)} | ` +
          `${num(r.extra!["appendP50Ms"], 2)} / ${num(r.extra!["appendP99Ms"], 2)} |`
      )
    )
  }
  if (relay !== undefined) {
    table.push(
      "",
      `| NATS relay, ${relay.events} committed events | events/s | vs bare | commit-to-ack p50 / p99 ms (${relay.live} live events, 8 writers) |`,
      "| --- | ---: | ---: | ---: |",
      `| bare publish loop (256 in flight) | ${fmt(relay.bareRate)} | | |`,
      `| relay, commit to ack | ${fmt(relay.relayRate)} | ${ratio(relay.relayRate / relay.bareRate)} | ${relay.p50} / ${relay.p99} |`
    )
  }
  console.log(`\n${header}\n\n${table.join("\n")}\n`)
  const dir = new URL("../bench-results/", import.meta.url)
  mkdirSync(dir, { recursive: true })
  const file = new URL(`bench-${environment.date.replaceAll(":", "-")}.json`, dir)
  writeFileSync(file, JSON.stringify({ environment, rows, relay }, null, 2))
  console.log(`Figures written to ${file.pathname}`)
})

NodeRuntime.runMain(program.pipe(Effect.scoped, Effect.provide(Reactivity.layer)))
