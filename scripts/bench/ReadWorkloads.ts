/**
 * The read workloads of issue 24, against the hand-written reads an application would write without evently:
 * - `w5r`: read one 100-event task stream and decode it through `EventCodec.typed` (evently), against R1's raw
 *   `select … where stream = $1 order by stream_version` of the same columns, JSON parsed by the driver.
 * - `w6r`: a subscription catching up N events from the beginning (default 200,000; `--catchup-events=1000000`),
 *   against R1's raw keyset scan `where position > $1 order by position limit $batch`, with the process's peak RSS
 *   and heap during each. Interleaved reps (`--reps`), medians reported.
 */
import { PgSchema, PgSubscriptions } from "@evently/postgres"
import { EventCodec, ExpectedVersion, Subscriptions } from "@evently/store"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import * as SqlClient from "effect/sql/SqlClient"
import * as Stream from "effect/Stream"
import { TaskEvent } from "task-list/src/TaskMachine.ts"
import { type Measurement, summarize } from "./Measure.ts"
import type { Scenario, ScenarioRow } from "./Scenarios.ts"
import { eventlyStore, eventlyTables, type Operation, taskHistory, type Variant, type Workload } from "./Workloads.ts"

const flag = (name: string): string | undefined =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)

const taskCodec = EventCodec.make(TaskEvent)
const readStreams = 50
let runId = 0

/** Workload 5 (issue 24): one 100-event stream read and decoded; the check counts every event of every read. */
const readAndDecode = (variant: "R1" | "evently"): Variant => ({
  eventsPerOperation: taskHistory.length,
  prepare: () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const run = `rd${++runId}`
      const streamOf = (n: number) => `task-${run}n${n % readStreams}`
      const typed = EventCodec.typed(yield* eventlyStore({ notify: false }), taskCodec)
      yield* Effect.forEach(
        Array.from({ length: readStreams }, (_, n) => n),
        (n) => typed.append(streamOf(n), taskHistory, { expected: ExpectedVersion.NoStream })
      )
      let short = 0
      const count = (n: number) => {
        if (n !== taskHistory.length) short++
        return n
      }
      const operation: Operation =
        variant === "evently"
          ? (worker, sequence) =>
              Effect.map(Stream.runCollect(typed.readStream(streamOf(worker * 7 + sequence))), (events) =>
                count(events.length)
              )
          : (worker, sequence) =>
              Effect.map(
                sql`select position, transaction_id::text as txid, stream, category, stream_version, event_id,
                    event_type, schema_version, data, metadata, recorded_at
                  from ${sql(eventlyTables.events)} where stream = ${streamOf(worker * 7 + sequence)}
                  order by stream_version`,
                (rows) => count(rows.length)
              )
      return {
        operation,
        check: Effect.suspend(() =>
          short === 0
            ? Effect.succeed(`every read returned ${taskHistory.length} events`)
            : Effect.die(new Error(`${short} reads returned fewer than ${taskHistory.length} events`))
        )
      }
    })
})

/** The read workloads that repeat an operation (registered beside `workloads` in `bench.ts`). */
export const readWorkloads: ReadonlyArray<Workload> = [
  {
    id: "w5r",
    title: "5r. read + decode a 100-event stream (EventCodec.typed)",
    concurrency: [1, 4],
    eventsPerOperation: taskHistory.length,
    operationUnit: "stream",
    seconds: { quick: 1, full: 10 },
    variants: { R1: readAndDecode("R1"), evently: readAndDecode("evently") }
  }
]

const mb = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10

interface Sampled<A> {
  readonly result: A
  readonly seconds: number
  readonly cpuMicros: number
  readonly rssStartMb: number
  readonly rssPeakMb: number
  readonly rssEndMb: number
  readonly heapPeakMb: number
}

/** Runs `effect` after a GC (when `--expose-gc`), sampling RSS and heap every 20 ms: time, CPU and the peaks. */
const sampled = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    ;(globalThis as { gc?: () => void }).gc?.()
    const start = process.memoryUsage()
    let rssPeak = start.rss
    let heapPeak = start.heapUsed
    const sample = Effect.sync(() => {
      const m = process.memoryUsage()
      rssPeak = Math.max(rssPeak, m.rss)
      heapPeak = Math.max(heapPeak, m.heapUsed)
    })
    const sampler = yield* Effect.forkChild(Effect.repeat(sample, Schedule.spaced("20 millis")))
    const cpuBefore = process.cpuUsage()
    const started = performance.now()
    const result = yield* effect
    const seconds = (performance.now() - started) / 1000
    const cpu = process.cpuUsage(cpuBefore)
    yield* Fiber.interrupt(sampler)
    yield* sample
    return {
      result,
      seconds,
      cpuMicros: cpu.user + cpu.system,
      rssStartMb: mb(start.rss),
      rssPeakMb: mb(rssPeak),
      rssEndMb: mb(process.memoryUsage().rss),
      heapPeakMb: mb(heapPeak)
    } satisfies Sampled<A>
  })

const tables = PgSchema.tableNames("readcatchup_")

/** Loads `total` events server-side (100,000 per statement, so several transaction ids). */
const load = (total: number) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* PgSchema.migrate.pipe(Effect.provideService(PgSchema.Tables, tables))
    for (let from = 0; from < total; from += 100_000) {
      const to = Math.min(total, from + 100_000) - 1
      yield* sql`insert into ${sql(tables.events)} (stream, category, stream_version, event_id, event_type, data, recorded_at)
        select 'catchup-' || (g / 100), 'catchup', (g % 100) + 1, gen_random_uuid(), 'Created',
          jsonb_build_object('description', 'Water the plants', 'assignee', 'alice', 'priority', 3, 'n', g), now()
        from generate_series(${from}::int, ${to}::int) as g`
    }
    yield* sql`vacuum analyze ${sql(tables.events)}`
  })

/** R1's keyset scan: every column of every event, `batch` rows a statement, by position. */
const keysetScan = (batch: number) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    let after = 0n
    let seen = 0
    while (true) {
      const rows = yield* sql<{ position: bigint }>`select position, transaction_id::text as txid, stream, category,
          stream_version, event_id, event_type, schema_version, data, metadata, recorded_at
        from ${sql(tables.events)} where position > ${after} order by position limit ${batch}`
      if (rows.length === 0) return seen
      seen += rows.length
      after = BigInt(rows[rows.length - 1]!.position)
    }
  })

/** A `PgSubscriptions.run` worker with a trivial handler from the beginning, until it has handled `total` events. */
const subscriptionCatchUp = (
  subscriptions: Subscriptions.Subscriptions["Service"],
  name: string,
  total: number,
  batch: number
) =>
  Effect.gen(function* () {
    let seen = 0
    let ordered = true
    let previous = 0n
    const done = yield* Deferred.make<void>()
    const fiber = yield* Effect.forkChild(
      subscriptions.run(
        name,
        (event) =>
          Effect.suspend(() => {
            seen++
            if (event.position <= previous) ordered = false
            previous = event.position
            return seen === total ? Deferred.succeed(done, undefined) : Effect.void
          }),
        { batchSize: batch, start: Subscriptions.Beginning }
      )
    )
    yield* Effect.timeoutOrElse(Deferred.await(done), {
      duration: Duration.minutes(10),
      orElse: () => Effect.die(new Error(`${name}: handled ${seen} of ${total} events in 10 minutes`))
    })
    yield* Fiber.interrupt(fiber)
    if (!ordered || seen !== total) return yield* Effect.die(new Error(`${name}: ${seen} events, ordered: ${ordered}`))
    return seen
  })

const median = (values: ReadonlyArray<number>) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

/**
 * Workload 6 (issue 24): catch-up of N events, R1's keyset scan and a subscription interleaved per rep, after one
 * uncounted round of each. The rows are each variant's median rep; the subscription's row carries its median ratio to
 * the scan of the same rep.
 */
const catchUp: Scenario = {
  id: "w6r",
  title: "6r. catch-up through a subscription, batch 1,000",
  run: (quick) =>
    Effect.gen(function* () {
      const total = Number(flag("catchup-events") ?? (quick ? 50_000 : 200_000))
      const reps = Number(flag("reps") ?? 1)
      const batch = 1_000
      yield* load(total)
      yield* Effect.logInfo(`w6r: loaded ${total} events`)
      const subscriptions = yield* PgSubscriptions.make().pipe(Effect.provideService(PgSchema.Tables, tables))
      const runs: Record<"R0" | "evently", Array<Sampled<number>>> = { R0: [], evently: [] }
      // One round of each first, not counted: the first run of either is mostly the JIT warming up (its ratio was
      // 0.55-0.66 where the next ones were 0.8-0.9).
      yield* keysetScan(batch)
      yield* subscriptionCatchUp(subscriptions, "readcatchupwarmup", total, batch)
      for (let rep = 0; rep < reps; rep++) {
        const scan = yield* sampled(keysetScan(batch))
        if (scan.result !== total) return yield* Effect.die(new Error(`the scan read ${scan.result} of ${total}`))
        runs.R0.push(scan)
        runs.evently.push(yield* sampled(subscriptionCatchUp(subscriptions, `readcatchup${rep}`, total, batch)))
        const [r, e] = [scan, runs.evently[rep]!]
        yield* Effect.logInfo(
          `w6r rep ${rep + 1}: scan ${Math.round(total / r.seconds)} ev/s (RSS peak ${r.rssPeakMb} MB), ` +
            `subscription ${Math.round(total / e.seconds)} ev/s (RSS ${e.rssStartMb} → ${e.rssPeakMb} MB, heap peak ` +
            `${e.heapPeakMb} MB), ratio ${(r.seconds / e.seconds).toFixed(2)}`
        )
      }
      const ratios = runs.evently.map((e, rep) => runs.R0[rep]!.seconds / e.seconds)
      const row = (variant: "R0" | "evently"): ScenarioRow => {
        const list = runs[variant]
        const m = list.find((r) => r.seconds === median(list.map((x) => x.seconds)))!
        const measurement: Measurement = summarize({
          latencies: [],
          events: total,
          seconds: m.seconds,
          cpuMicros: m.cpuMicros
        })
        return {
          // "R0" is what the catch-up table's "vs R0" divides by: here it is R1's keyset scan by position.
          variant,
          measurement,
          extra: {
            total,
            batchSize: batch,
            rssStartMb: m.rssStartMb,
            rssPeakMb: m.rssPeakMb,
            rssEndMb: m.rssEndMb,
            rssPeakOfRepsMb: Math.max(...list.map((x) => x.rssPeakMb)),
            heapPeakMb: m.heapPeakMb,
            ...(variant === "evently" ? { medianRatio: median(ratios), ratios: ratios.join(" ") } : {})
          }
        }
      }
      return [row("R0"), row("evently")]
    })
}

/** The read scenarios (registered beside `scenarios` in `bench.ts`). */
export const readScenarios: ReadonlyArray<Scenario> = [catchUp]
