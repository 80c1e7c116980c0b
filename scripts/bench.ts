/**
 * `pnpm bench [--quick]`: evently against raw-SQL baselines on the same Postgres, in the same run.
 * Creates its own database on the server from DATABASE_URL / PG*, prints a Markdown table and writes the figures
 * as JSON under bench-results/ (kept out of git).
 */
import { PgClient } from "@effect/sql-pg"
import { NodeRuntime } from "@effect/platform-node"
import { PgConfig, PgSchema } from "@evently/postgres"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { cpus } from "node:os"
import { type Measurement, measure } from "./bench/Measure.ts"
import { workloads } from "./bench/Workloads.ts"

const quick = process.argv.includes("--quick")
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
}

const versionOf = (pkg: string): string => {
  const path = new URL(`./node_modules/${pkg}/package.json`, import.meta.url)
  return (JSON.parse(readFileSync(path, "utf8")) as { version: string }).version
}

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : "–")
const ratio = (n: number | null) => (n === null ? "" : `${fmt(n * 100)}%`)

const program = Effect.gen(function* () {
  const url = yield* PgConfig.url
  const admin = yield* PgClient.make({ url, maxConnections: 1 })
  const database = `evently_bench_${process.pid}`
  yield* admin`drop database if exists ${admin(database)} with (force)`
  yield* admin`create database ${admin(database)}`
  yield* Effect.addFinalizer(() => Effect.ignore(admin`drop database if exists ${admin(database)} with (force)`))
  const [server] = yield* admin<{ version: string }>`select current_setting('server_version') as version`

  const rows: Array<Row> = []
  const selected = workloads.filter((w) => only === undefined || only.includes(w.id))
  const db = PgClient.layer({ url, database, maxConnections: 40 })
  yield* Effect.gen(function* () {
    for (const prefix of ["r0_", "r1_", "evently_"]) {
      yield* PgSchema.migrate.pipe(Effect.provideService(PgSchema.Tables, PgSchema.tableNames(prefix)))
    }
    for (const workload of selected) {
      for (const concurrency of workload.concurrency) {
        const results: Record<string, Measurement> = {}
        for (const [variant, make] of Object.entries(workload.variants)) {
          const operation = yield* make(concurrency)
          const result = yield* measure({
            concurrency,
            seconds: quick ? workload.seconds.quick : workload.seconds.full,
            eventsPerOperation: workload.eventsPerOperation,
            operation
          })
          results[variant] = result
          const r0 = results["R0"]
          const r1 = results["R1"]
          const row: Row = {
            workload: workload.title,
            concurrency,
            variant,
            ...result,
            vsR0: r0 && variant !== "R0" ? result.eventsPerSecond / r0.eventsPerSecond : null,
            vsR1: r1 && variant !== "R1" && variant !== "R0" ? result.eventsPerSecond / r1.eventsPerSecond : null
          }
          rows.push(row)
          yield* Effect.logInfo(
            `${workload.id} c=${concurrency} ${variant}: ${fmt(result.eventsPerSecond)} ev/s p99 ${fmt(result.p99Ms, 1)} ms`
          )
        }
      }
    }
  }).pipe(Effect.provide(db))

  const environment = {
    date: DateTime.formatIso(yield* DateTime.now),
    quick,
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
    (quick ? " · quick" : "")
  const table = [
    "| workload | conc. | variant | events/s | p50 ms | p99 ms | CPU s/1k ev | vs R0 | vs R1 |",
    "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...rows.map(
      (r) =>
        `| ${r.workload} | ${r.concurrency} | ${r.variant} | ${fmt(r.eventsPerSecond)} | ${fmt(r.p50Ms, 2)} | ` +
        `${fmt(r.p99Ms, 2)} | ${fmt(r.cpuSecondsPer1k, 3)} | ${ratio(r.vsR0)} | ${ratio(r.vsR1)} |`
    )
  ].join("\n")
  console.log(`\n${header}\n\n${table}\n`)
  const dir = new URL("../bench-results/", import.meta.url)
  mkdirSync(dir, { recursive: true })
  const file = new URL(`bench-${environment.date.replaceAll(":", "-")}.json`, dir)
  writeFileSync(file, JSON.stringify({ environment, rows }, null, 2))
  console.log(`Figures written to ${file.pathname}`)
})

NodeRuntime.runMain(program.pipe(Effect.scoped, Effect.provide(Reactivity.layer)))
