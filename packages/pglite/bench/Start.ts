/**
 * `node packages/pglite/bench/Start.ts [--runs=5]`: how fast the embedded database starts, as a new user meets it.
 *
 * - `ready`: a process that opens the in-memory database (`PgliteClient.layer()`) and runs evently's migrations; the
 *   time from the start of opening to migrated, and from the process's start.
 * - `example`: `node examples/task-list/main.ts` on the embedded database, its wall time from spawn to exit and the
 *   breakdown it prints.
 *
 * Each figure is the median of the runs. The first run in a new setup prepares the data directory (initdb), so it
 * is run once, apart, before the measured runs, and reported on its own. The load average is printed before and
 * after: on a busy machine every figure is slower. Speed is measured here, never asserted in tests.
 */
import { PgliteClient } from "@evently/pglite"
import { PgSchema } from "@evently/postgres"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { execFile } from "node:child_process"
import { loadavg } from "node:os"
import { fileURLToPath } from "node:url"

const self = fileURLToPath(import.meta.url)
const example = fileURLToPath(new URL("../../../examples/task-list/main.ts", import.meta.url))
const runs = Number(process.argv.find((a) => a.startsWith("--runs="))?.slice("--runs=".length) ?? 5)

const env = (): NodeJS.ProcessEnv => {
  const copy = { ...process.env }
  for (const name of ["DATABASE_URL", "PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "EVENTLY_DATA_DIR"]) {
    delete copy[name]
  }
  return copy
}

const spawn = (args: ReadonlyArray<string>) =>
  new Promise<{ readonly wall: number; readonly stdout: string }>((resolve, reject) => {
    const started = performance.now()
    execFile(process.execPath, [...args], { env: env(), maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`${args.join(" ")} failed: ${stderr}`))
      else resolve({ wall: performance.now() - started, stdout })
    })
  })

const median = (values: ReadonlyArray<number>): number => {
  const sorted = values.toSorted((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return Math.round(sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2)
}

const load = () =>
  loadavg()
    .map((n) => n.toFixed(2))
    .join(", ")

/** The child: open, migrate, report. */
const ready = async () => {
  const loaded = performance.now()
  const program = Effect.gen(function* () {
    yield* PgSchema.migrate
    return performance.now()
  })
  const migrated = await Effect.runPromise(program.pipe(Effect.provide(Layer.orDie(PgliteClient.layer()))))
  console.log(JSON.stringify({ loaded, migrated }))
}

/** One `ready` child: milliseconds from opening to migrated, and from the process's start to migrated. */
const measureReady = async () => {
  const { stdout } = await spawn([self, "--child-ready"])
  const { loaded, migrated } = JSON.parse(stdout.trim().split("\n").at(-1)!) as { loaded: number; migrated: number }
  return { open: migrated - loaded, total: migrated }
}

/** One example run: its wall time and its breakdown. */
const measureExample = async () => {
  const { stdout, wall } = await spawn([example])
  const line = /^Timing: (.+) = (\d+) ms$/m.exec(stdout)
  if (line === null) throw new Error(`no timing line in:\n${stdout}`)
  const steps = line[1]!.split(" + ").map((part) => {
    const [, step, ms] = /^(.+) (\d+) ms$/.exec(part)!
    return [step!, Number(ms)] as const
  })
  return { wall, steps }
}

const main = async () => {
  console.log(`load average before: ${load()}`)
  const first = await measureReady()
  console.log(`first ready (prepares the data directory when it is missing): ${Math.round(first.open)} ms`)

  const readies: Array<{ open: number; total: number }> = []
  for (let i = 0; i < runs; i++) readies.push(await measureReady())
  console.log(
    `ready (open + migrate), median of ${runs}: ${median(readies.map((r) => r.open))} ms ` +
      `(${median(readies.map((r) => r.total))} ms since the process started)`
  )

  const examples: Array<Awaited<ReturnType<typeof measureExample>>> = []
  for (let i = 0; i < runs; i++) examples.push(await measureExample())
  const names = examples[0]!.steps.map(([step]) => step)
  const parts = names.map((name, i) => `${name} ${median(examples.map((e) => e.steps[i]![1]))} ms`)
  console.log(`example, median of ${runs}: wall ${median(examples.map((e) => e.wall))} ms; ${parts.join(" + ")}`)
  console.log(`example walls: ${examples.map((e) => Math.round(e.wall)).join(", ")} ms`)
  console.log(`load average after: ${load()}`)
}

if (process.argv.includes("--child-ready")) await ready()
else await main()
