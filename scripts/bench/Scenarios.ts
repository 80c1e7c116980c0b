/**
 * The workloads that are not "N workers repeat an operation": catch-up (workload 6) and live latency (workload 7).
 * Each runs its variants in turn on its own table set and reports `Measurement`s plus figures of its own.
 */
import { PgEventStore, PgSchema, PgSubscriptions } from "@evently/postgres"
import { ExpectedVersion, Subscriptions } from "@evently/store"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import * as SqlClient from "effect/sql/SqlClient"
import { type Measurement, percentile, summarize } from "./Measure.ts"

/** One variant's result: the common figures, and the scenario's own (RSS, latency bounds, rates). */
export interface ScenarioRow {
  readonly variant: string
  readonly measurement: Measurement
  readonly extra: Readonly<Record<string, number | string>>
}

export interface Scenario {
  readonly id: string
  readonly title: string
  readonly run: (quick: boolean) => Effect.Effect<ReadonlyArray<ScenarioRow>, unknown, SqlClient.SqlClient>
}

const mb = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10
const wallClock = () => performance.timeOrigin + performance.now()

/** Samples the process RSS every 20 ms while `effect` runs: start, peak and end, in MB. */
const withRss = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const start = process.memoryUsage().rss
    let peak = start
    const sample = Effect.sync(() => {
      peak = Math.max(peak, process.memoryUsage().rss)
    })
    const sampler = yield* Effect.forkChild(Effect.repeat(sample, Schedule.spaced("20 millis")))
    const result = yield* effect
    yield* Fiber.interrupt(sampler)
    yield* sample
    const end = process.memoryUsage().rss
    return { result, rss: { rssStartMb: mb(start), rssPeakMb: mb(peak), rssEndMb: mb(end) } }
  })

const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const cpuBefore = process.cpuUsage()
    const started = performance.now()
    const result = yield* effect
    const cpu = process.cpuUsage(cpuBefore)
    return { result, seconds: (performance.now() - started) / 1000, cpuMicros: cpu.user + cpu.system }
  })

const catchupTables = PgSchema.tableNames("catchup_")

interface ScanRow {
  readonly position: bigint
  readonly txid: string
}

/**
 * Workload 6: N events loaded by `insert … select generate_series` (100,000 per statement, so several transaction
 * ids), then read from the beginning in batches of 1,000 by a raw keyset scan over `(transaction_id, position)` (R0)
 * and by a `PgSubscriptions` worker with a trivial handler (evently), which also commits its checkpoint per batch.
 */
const catchUp: Scenario = {
  id: "w6",
  title: "6. catch-up from the beginning, batch 1,000",
  run: (quick) =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const total = quick ? 100_000 : 1_000_000
      const batchSize = 1_000
      const cap = Duration.seconds(quick ? 45 : 180)
      yield* PgSchema.migrate.pipe(Effect.provideService(PgSchema.Tables, catchupTables))
      const events = catchupTables.events
      for (let from = 0; from < total; from += 100_000) {
        const to = Math.min(total, from + 100_000) - 1
        yield* sql`insert into ${sql(events)} (stream, category, stream_version, event_id, event_type, data, recorded_at)
          select 'catchup-' || (g / 100), 'catchup', (g % 100) + 1, gen_random_uuid(), 'Created',
            jsonb_build_object('description', 'Water the plants', 'assignee', 'alice', 'priority', 3, 'n', g), now()
          from generate_series(${from}::int, ${to}::int) as g`
      }
      yield* sql`vacuum analyze ${sql(events)}`
      yield* Effect.logInfo(`w6: loaded ${total} events`)

      const rawScan = Effect.gen(function* () {
        let tx = "0"
        let pos = 0n
        let seen = 0
        const latencies: Array<number> = []
        while (true) {
          const t0 = performance.now()
          // The text id is aliased `txid`: an alias named `transaction_id` would be what ORDER BY sorts on (as text).
          const rows = yield* sql<ScanRow & Record<string, unknown>>`select position,
              transaction_id::text as txid, stream, category, stream_version::int as stream_version,
              event_id::text as event_id, event_type, schema_version, data, metadata, recorded_at
            from ${sql(events)}
            where (transaction_id, position) > (${tx}::xid8, ${pos})
            order by transaction_id, position
            limit ${batchSize}`
          latencies.push(performance.now() - t0)
          if (rows.length === 0) break
          seen += rows.length
          const last = rows[rows.length - 1]!
          tx = last.txid
          pos = BigInt(last.position)
        }
        return { seen, latencies }
      })
      const r0 = yield* withRss(timed(rawScan))
      if (r0.result.result.seen !== total) return yield* Effect.die(new Error(`R0 scanned ${r0.result.result.seen}`))

      const subscriptions = yield* PgSubscriptions.make().pipe(Effect.provideService(PgSchema.Tables, catchupTables))
      const subscription = Effect.gen(function* () {
        let seen = 0
        let lastPosition = 0n
        const done = yield* Deferred.make<void>()
        const fiber = yield* Effect.forkChild(
          subscriptions.run(
            "catchup",
            (event) =>
              Effect.suspend(() => {
                seen++
                lastPosition = event.position
                return seen === total ? Deferred.succeed(done, undefined) : Effect.void
              }),
            { batchSize, start: Subscriptions.Beginning }
          )
        )
        // Bounded, so a slow subscription cannot stall the whole run: the row then says how far it got.
        const finished = yield* Effect.timeoutOption(Deferred.await(done), cap)
        yield* Fiber.interrupt(fiber)
        return { seen, lastPosition, finished: finished._tag === "Some" }
      })
      const evently = yield* withRss(timed(subscription))
      const [max] = yield* sql<{ position: bigint }>`select max(position) as position from ${sql(events)}`
      const handled = evently.result.result.seen
      if (evently.result.result.finished && BigInt(max!.position) !== evently.result.result.lastPosition) {
        return yield* Effect.die(new Error(`the subscription ended at ${evently.result.result.lastPosition}`))
      }
      const row = (
        variant: string,
        run: { readonly seconds: number; readonly cpuMicros: number },
        latencies: ReadonlyArray<number>,
        rss: typeof r0.rss,
        handledEvents: number
      ): ScenarioRow => ({
        variant,
        measurement: summarize({
          latencies,
          events: handledEvents,
          seconds: run.seconds,
          cpuMicros: run.cpuMicros
        }),
        extra: {
          ...rss,
          total,
          batchSize,
          ...(handledEvents === total ? {} : { unfinished: `${handledEvents} of ${total} in ${Duration.format(cap)}` })
        }
      })
      return [
        row("R0", r0.result, r0.result.result.latencies, r0.rss, total),
        // A subscription's batches are not timed one by one: its p50/p99 stay empty.
        row("evently", evently.result, [], evently.rss, handled)
      ]
    })
}

const liveTables = PgSchema.tableNames("live_")

interface LiveData {
  readonly sentAt: number
  readonly measured: boolean
}

/**
 * Workload 7: 8 writers at a fixed total rate, one subscription. Each event carries the wall-clock time (shared
 * monotonic clock of this process) at which its writer called `append`; the handler's latency is measured from
 * there, so it is an upper bound of commit→handler that includes the append's own round trip (reported beside it).
 */
const live = (notify: boolean) =>
  Effect.fnUntraced(function* (quick: boolean) {
    const rate = quick ? 500 : 1_000
    const seconds = quick ? 5 : 30
    const writers = 8
    const store = yield* PgEventStore.make({ notify }).pipe(Effect.provideService(PgSchema.Tables, liveTables))
    const subscriptions = yield* PgSubscriptions.make().pipe(Effect.provideService(PgSchema.Tables, liveTables))
    const latencies: Array<number> = []
    const name = `live-${notify ? "notify" : "poll"}`
    let measuredSeen = 0
    const ready = yield* Deferred.make<void>()
    const allSeen = yield* Deferred.make<void>()
    let expected = Number.POSITIVE_INFINITY
    const fiber = yield* Effect.forkChild(
      subscriptions.run(
        name,
        (event) =>
          Effect.suspend(() => {
            const data = event.data as LiveData
            if (!data.measured) return Deferred.succeed(ready, undefined)
            latencies.push(wallClock() - data.sentAt)
            measuredSeen++
            return measuredSeen >= expected ? Deferred.succeed(allSeen, undefined) : Effect.void
          }),
        { start: Subscriptions.End, notify, categories: ["live"], batchSize: 1_000 }
      )
    )
    // Warm-up: the subscription is listening and its checkpoint exists once it has seen an unmeasured event.
    yield* Effect.sleep("300 millis")
    const ping = Effect.asVoid(
      store.append(`live-ping${name}`, [{ type: "Ping", data: { sentAt: wallClock(), measured: false } }])
    )
    yield* Effect.timeoutOrElse(Deferred.await(ready), {
      duration: "5 seconds",
      orElse: () => Effect.die(new Error(`${name}: the subscription never saw the warm-up event`))
    }).pipe(Effect.raceFirst(Effect.forever(Effect.andThen(ping, Effect.sleep("200 millis")))))

    const appendLatencies: Array<number> = []
    let sent = 0
    const t0 = performance.now()
    const perWriter = Math.round((rate * seconds) / writers)
    const cpuBefore = process.cpuUsage()
    yield* Effect.forEach(
      Array.from({ length: writers }, (_, w) => w),
      (w) =>
        Effect.gen(function* () {
          for (let i = 0; i < perWriter; i++) {
            const wait = t0 + ((i * writers + w) / rate) * 1000 - performance.now()
            if (wait > 0) yield* Effect.sleep(Duration.millis(wait))
            const sentAt = wallClock()
            yield* store.append(`live-${name}w${w}`, [{ type: "Tick", data: { sentAt, measured: true } }], {
              expected: ExpectedVersion.Any
            })
            appendLatencies.push(wallClock() - sentAt)
            sent++
          }
        }),
      { concurrency: "unbounded", discard: true }
    )
    const writeSeconds = (performance.now() - t0) / 1000
    expected = sent
    if (measuredSeen < expected) {
      yield* Effect.timeoutOrElse(Deferred.await(allSeen), {
        duration: "10 seconds",
        orElse: () => Effect.die(new Error(`${name}: ${measuredSeen} of ${sent} events reached the handler`))
      })
    }
    const cpu = process.cpuUsage(cpuBefore)
    yield* Fiber.interrupt(fiber)
    const sortedAppends = Float64Array.from(appendLatencies).sort()
    const sorted = Float64Array.from(latencies).sort()
    return {
      variant: notify ? "evently NOTIFY" : "evently poll-only (1 s)",
      measurement: summarize({
        latencies,
        events: measuredSeen,
        seconds: writeSeconds,
        cpuMicros: cpu.user + cpu.system
      }),
      extra: {
        targetRate: rate,
        achievedRate: Math.round(sent / writeSeconds),
        writers,
        appendP50Ms: percentile(sortedAppends, 50),
        appendP99Ms: percentile(sortedAppends, 99),
        maxMs: sorted[sorted.length - 1] ?? Number.NaN
      }
    } satisfies ScenarioRow
  })

const liveLatency: Scenario = {
  id: "w7",
  title: "7. live latency: append call → handler",
  run: (quick) =>
    Effect.gen(function* () {
      yield* PgSchema.migrate.pipe(Effect.provideService(PgSchema.Tables, liveTables))
      return [yield* live(true)(quick), yield* live(false)(quick)]
    })
}

export const scenarios: ReadonlyArray<Scenario> = [catchUp, liveLatency]
