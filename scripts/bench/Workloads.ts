/**
 * The benchmark's time-boxed workloads, each with its raw-SQL baselines and evently's variant, measured at the same
 * concurrencies in the same run. Workloads that are not "N workers repeat an operation" (catch-up, live latency)
 * live in `Scenarios.ts`.
 */
import { PgEventStore, PgSchema } from "@evently/postgres"
import { CommandHandler, EventCodec, EventStore, ExpectedVersion, RetryPolicy } from "@evently/store"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import * as SqlClient from "effect/sql/SqlClient"
import * as Stream from "effect/Stream"
import { Task, TaskEvent, TaskMachine } from "task-list/src/TaskMachine.ts"
import { type BenchEvent, r0Append, r0Coalescer, r1Append } from "./Baselines.ts"
import { Counted, counter } from "./HotCounter.ts"

/** One operation of one worker: returns how many events it handled when that is not the workload's fixed number. */
export type Operation = (worker: number, sequence: number) => Effect.Effect<number | void, unknown>

/**
 * A variant ready to run: its operation, and a check run after the measurement that proves the variant did what it
 * claims (it fails the run otherwise) and says what it checked.
 */
export interface Prepared {
  readonly operation: Operation
  readonly check?: Effect.Effect<string, unknown> | undefined
  /** How many workers repeat the operation, when not one per unit of concurrency. */
  readonly workers?: number | undefined
  /** The variant means nothing at this concurrency: it is left out of the run. */
  readonly skip?: boolean | undefined
}

/** A variant: how many events one operation handles, and how to set it up for a concurrency. */
export interface Variant {
  readonly eventsPerOperation: number
  /** Resources it opens in the scope (runner processes, a cluster client) last until the end of the bench's run. */
  readonly prepare: (concurrency: number) => Effect.Effect<Prepared, unknown, SqlClient.SqlClient | Scope.Scope>
}

export interface Workload {
  readonly id: string
  readonly title: string
  readonly concurrency: ReadonlyArray<number>
  readonly eventsPerOperation: number
  /** What one operation is, when it is not "an append" (e.g. "stream" for reads): the table adds its rate. */
  readonly operationUnit?: string | undefined
  readonly seconds: { readonly quick: number; readonly full: number }
  readonly variants: Readonly<Record<string, Variant>>
  /**
   * Variants the table compares with another of the same workload (beside R0 and R1): the ratio of their events/s,
   * and the time per operation the variant adds (1/its rate − 1/the other's), each the median over reps.
   */
  readonly compare?: ReadonlyArray<{ readonly variant: string; readonly baseline: string }> | undefined
}

/** evently's tables in the benchmark database (the baselines use `r0_` and `r1_` tables of the same shape). */
export const eventlyTables = PgSchema.tableNames("evently_")

/** evently's event store on the benchmark's pool and `evently_` tables, through the public constructor only. */
export const eventlyStore = (options: PgEventStore.Options = {}) =>
  PgEventStore.make(options).pipe(Effect.provideService(PgSchema.Tables, eventlyTables))

/**
 * evently's store in a metric registry of its own, with a summary of its group-commit batches (how many appends each
 * statement carried) for the run's check column.
 */
const eventlyStoreWithBatches = Effect.fnUntraced(function* (options: PgEventStore.Options) {
  const registry: Metric.MetricRegistry = new Map()
  const store = yield* Effect.provideService(eventlyStore(options), Metric.MetricRegistry, registry)
  const batches = Effect.map(Metric.value(PgEventStore.batchSizes), (h) => {
    const mean = h.count === 0 ? 0 : h.sum / h.count
    // The buckets are cumulative: the count up to each bound. Listed here per bucket, empty ones left out.
    const perBucket: Array<string> = []
    let previous = 0
    for (const [bound, cumulative] of h.buckets) {
      if (cumulative > previous) perBucket.push(`≤${bound}: ${cumulative - previous}`)
      previous = cumulative
    }
    return `${h.count} batches, mean ${mean.toFixed(1)} appends, max ${h.max} (${perBucket.join(", ")})`
  }).pipe(Effect.provideService(Metric.MetricRegistry, registry))
  return { store, batches }
})

const payload = { description: "Water the plants", assignee: "alice", priority: 3 }
const payloadJson = JSON.stringify(payload)

let runId = 0
/** Unique per variant run, so no variant ever meets another's streams. */
const nextRun = () => `r${++runId}`

const batch = (run: string, worker: number, sequence: number, size: number): Array<BenchEvent> =>
  Array.from({ length: size }, (_, i) => ({
    eventId: uuidFor(run, worker, sequence, i),
    type: "Created",
    data: payloadJson
  }))

/** The same batch as evently appends it: the data is an object the store serialises, as an application's is. */
const newEvents = (events: ReadonlyArray<BenchEvent>): Array<EventStore.NewEvent> =>
  events.map((e) => ({ eventId: e.eventId, type: e.type, data: payload }))

// Deterministic, distinct v4-shaped UUIDs without a random source on the hot path.
const hex = (n: number, width: number) => n.toString(16).padStart(width, "0").slice(-width)
const uuidFor = (run: string, worker: number, sequence: number, index: number) =>
  `${hex(Number(run.slice(1)), 8)}-${hex(worker, 4)}-4${hex(index, 3)}-8${hex(sequence >>> 16, 3)}-${hex(sequence & 0xffff, 4)}${hex(Math.floor(sequence / 2 ** 32), 8)}`

const now = Effect.map(DateTime.now, DateTime.toDateUtc)

type Append = "R0" | "R1" | "R0 coalesced" | { readonly notify: boolean }

const expectVersion = (what: string, actual: number, expected: number) =>
  actual === expected
    ? Effect.succeed(`${what} at version ${actual}`)
    : Effect.die(new Error(`${what}: version ${actual}, expected ${expected}`))

/** Workloads 1, 3 and 8: each operation appends `size` events to a stream no one has written (`NoStream`). */
const newStream = (size: number, append: Append): Variant => ({
  eventsPerOperation: size,
  prepare: () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const run = nextRun()
      const streamOf = (worker: number, sequence: number) => `bench-${run}w${worker}s${sequence}`
      if (append === "R0 coalesced") {
        if (size !== 1) return yield* Effect.die(new Error("R0 coalesced appends one event at a time"))
        const write = yield* r0Coalescer(sql, "r0_events")
        return {
          operation: (worker, sequence) =>
            Effect.flatMap(now, (at) =>
              write({
                stream: streamOf(worker, sequence),
                version: 1,
                event: batch(run, worker, sequence, 1)[0]!,
                recordedAt: at
              })
            )
        }
      }
      if (append === "R0" || append === "R1") {
        return {
          operation: (worker, sequence) =>
            Effect.flatMap(now, (at) => {
              const stream = streamOf(worker, sequence)
              const events = batch(run, worker, sequence, size)
              return Effect.asVoid(
                append === "R0"
                  ? r0Append(sql, "r0_events", stream, 1, events, at)
                  : r1Append(sql, { events: "r1_events", streams: "r1_streams" }, stream, 0, events, at)
              )
            })
        }
      }
      const { batches, store } = yield* eventlyStoreWithBatches({ notify: append.notify })
      const options = { expected: ExpectedVersion.NoStream }
      return {
        operation: (worker, sequence) =>
          Effect.asVoid(
            store.append(streamOf(worker, sequence), newEvents(batch(run, worker, sequence, size)), options)
          ),
        // The first measured operation of worker 0 created its stream with exactly `size` events.
        check: Effect.zipWith(
          Effect.flatMap(store.streamVersion(streamOf(0, 0)), (v) => expectVersion(streamOf(0, 0), v, size)),
          batches,
          (version, summary) => `${version}; ${summary}`
        )
      }
    })
})

/**
 * Workload 1's ceiling with no queue at all: `connections` workers each insert a prebuilt batch of
 * `concurrency / connections` rows per statement (the events of one new stream) with R0's plain `INSERT … unnest`,
 * back to back. With `concurrency` appends outstanding, no group commit can put more rows per second through this
 * driver and this table, whatever its number of batches in flight; `connections: 2` is two batches in flight.
 */
const r0Batched = (connections: number): Variant => ({
  eventsPerOperation: 1,
  prepare: (concurrency) =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const rows = concurrency / connections
      if (!Number.isInteger(rows) || rows < 2) return { operation: () => Effect.void, skip: true }
      const run = nextRun()
      return {
        workers: connections,
        operation: (worker, sequence) =>
          Effect.flatMap(now, (at) =>
            Effect.as(
              r0Append(
                sql,
                "r0_events",
                `bench-${run}w${worker}s${sequence}`,
                1,
                batch(run, worker, sequence, rows),
                at
              ),
              rows
            )
          )
      }
    })
})

/** Workload 2: each worker appends one event at a time to its own existing stream with `Exact(v)`. */
const existingStream = (append: Append): Variant => ({
  eventsPerOperation: 1,
  prepare: (concurrency) =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const run = nextRun()
      const streamOf = (worker: number) => `bench-${run}w${worker}`
      // Every stream exists (version 1) before the first operation.
      const versions = Array.from({ length: concurrency }, () => 1)
      const seed = (worker: number) => batch(run, worker, 2 ** 40, 1)
      if (append === "R0 coalesced") {
        const write = yield* r0Coalescer(sql, "r0_events")
        return {
          operation: (worker, sequence) =>
            Effect.flatMap(now, (at) => {
              const version = versions[worker]! + 1
              versions[worker] = version
              return write({
                stream: streamOf(worker),
                version,
                event: batch(run, worker, sequence, 1)[0]!,
                recordedAt: at
              })
            })
        }
      }
      if (append === "R0" || append === "R1") {
        const tables = { events: "r1_events", streams: "r1_streams" }
        yield* Effect.forEach(versions, (_, worker) =>
          Effect.flatMap(now, (at) =>
            append === "R0"
              ? r0Append(sql, "r0_events", streamOf(worker), 1, seed(worker), at)
              : r1Append(sql, tables, streamOf(worker), 0, seed(worker), at)
          )
        )
        return {
          operation: (worker, sequence) =>
            Effect.flatMap(now, (at) => {
              const stream = streamOf(worker)
              const events = batch(run, worker, sequence, 1)
              const expected = versions[worker]!
              versions[worker] = expected + 1
              return append === "R0"
                ? Effect.asVoid(r0Append(sql, "r0_events", stream, expected + 1, events, at))
                : Effect.flatMap(r1Append(sql, tables, stream, expected, events, at), (rows) =>
                    rows.length === 1 ? Effect.void : Effect.die(new Error(`R1 conflict on ${stream}`))
                  )
            })
        }
      }
      const { batches, store } = yield* eventlyStoreWithBatches({ notify: append.notify })
      yield* Effect.forEach(versions, (_, worker) =>
        store.append(streamOf(worker), newEvents(seed(worker)), { expected: ExpectedVersion.NoStream })
      )
      return {
        operation: (worker, sequence) => {
          const expected = versions[worker]!
          versions[worker] = expected + 1
          return Effect.asVoid(
            store.append(streamOf(worker), newEvents(batch(run, worker, sequence, 1)), {
              expected: ExpectedVersion.Exact(expected)
            })
          )
        },
        // Every Exact(v) append of worker 0 succeeded, so its stream is at the version the worker counted.
        check: Effect.zipWith(
          Effect.flatMap(store.streamVersion(streamOf(0)), (v) => expectVersion(streamOf(0), v, versions[0]!)),
          batches,
          (version, summary) => `${version}; ${summary}`
        )
      }
    })
})

/** What a hot-stream variant counted (warm-up included): the check reports it and the stream's version must match. */
export interface HotCounts {
  conflicts: number
  successes: number
  gaveUp: number
}

const hotCheck = (stream: string, c: HotCounts) =>
  `${(c.conflicts / Math.max(1, c.successes)).toFixed(2)} conflicts per success; ` +
  `${c.gaveUp} gave up of ${c.successes + c.gaveUp} commands (warm-up included); ${stream}`

const isRetriesExhausted = (error: unknown): error is CommandHandler.ConcurrencyRetriesExhausted =>
  error instanceof CommandHandler.ConcurrencyRetriesExhausted

/** A command handler of the counter: in-process (default or racing) or a cluster's client. */
export type HotHandler = CommandHandler.CommandHandler<number, typeof Counted.Type, number, unknown>

/**
 * Workload 4: every worker sends commands to the same stream, each retried as `RetryPolicy.defaultSchedule` allows
 * (5 jittered exponential retries from 10 ms) and then given up. evently runs them through the `CommandHandler` with
 * its defaults (its commands on one stream take turns), or racing (`oneAtATimePerStream: false`); R1 is the same loop
 * by hand (read the version, the one-statement append with that expectation, again on a conflict). Given a handler
 * effect instead (a cluster's client: `ClusterWorkloads.ts`), the same loop runs through that handler. Events/s counts
 * successful commands only; conflicts come from the attempts.
 */
export const hotStream = (
  variant: "R1" | "evently" | "racing" | Effect.Effect<HotHandler, unknown, SqlClient.SqlClient | Scope.Scope>,
  counts: HotCounts
): Variant => ({
  eventsPerOperation: 1,
  prepare: () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const run = nextRun()
      const stream = `hot-${run}`
      counts.conflicts = 0
      counts.successes = 0
      counts.gaveUp = 0
      const gaveUp = Effect.sync(() => {
        counts.gaveUp++
        return 0
      })
      if (variant === "R1") {
        const tables = { events: "r1_events", streams: "r1_streams" }
        const attempt = (worker: number, sequence: number) =>
          Effect.gen(function* () {
            const [row] = yield* sql<{ version: number }>`select version::int4 as version
              from ${sql(tables.streams)} where stream = ${stream}`
            const at = yield* now
            // A fresh id per attempt: a hot stream can take more retries than any fixed range of ids leaves room for.
            const event = { ...batch(run, worker, sequence, 1)[0]!, eventId: crypto.randomUUID() }
            const written = yield* r1Append(sql, tables, stream, row?.version ?? 0, [event], at)
            if (written.length === 1) {
              counts.successes++
              return 1
            }
            counts.conflicts++
            return yield* Effect.fail("conflict" as const)
          })
        return {
          operation: (worker, sequence) =>
            attempt(worker, sequence).pipe(
              Effect.retry({ schedule: RetryPolicy.defaultSchedule, while: (e) => e === "conflict" }),
              Effect.catchIf(
                (e) => e === "conflict",
                () => gaveUp
              )
            ),
          check: Effect.flatMap(
            sql<{
              version: number
            }>`select version::int4 as version from ${sql(tables.streams)} where stream = ${stream}`,
            (rows) => expectVersion(hotCheck(stream, counts), rows[0]?.version ?? 0, counts.successes)
          )
        }
      }
      const store = yield* eventlyStore({ notify: true })
      const handler: HotHandler =
        typeof variant !== "string"
          ? yield* variant
          : yield* CommandHandler.make({
              decider: counter,
              codec: EventCodec.make(Counted),
              ...(variant === "racing" ? { oneAtATimePerStream: false } : {})
            }).pipe(Effect.provideService(EventStore.EventStore, store))
      return {
        operation: (worker) =>
          handler.handle(stream, worker).pipe(
            Effect.map((handled) => {
              counts.conflicts += handled.attempts - 1
              counts.successes++
              return 1
            }),
            Effect.catchIf(isRetriesExhausted, (error) => {
              counts.conflicts += error.attempts
              return gaveUp
            }),
            Effect.provideService(EventStore.EventStore, store)
          ),
        check: Effect.flatMap(store.streamVersion(stream), (v) =>
          expectVersion(hotCheck(stream, counts), v, counts.successes)
        )
      }
    })
})
const hotCounts = {
  R1: { conflicts: 0, successes: 0, gaveUp: 0 },
  evently: { conflicts: 0, successes: 0, gaveUp: 0 },
  racing: { conflicts: 0, successes: 0, gaveUp: 0 }
}

/** A valid 100-event task history: created, assigned, scheduled, started, 95 reassignments/reschedulings, completed. */
export const taskHistory: ReadonlyArray<TaskEvent> = [
  Task.Created.make({ description: "Water the plants" }),
  Task.Assigned.make({ assignee: "alice" }),
  Task.Scheduled.make({ deadline: "2030-03-31" }),
  Task.Started.make({}),
  ...Array.from({ length: 95 }, (_, i) =>
    i % 2 === 0
      ? Task.Reassigned.make({ assignee: `user${i}` })
      : Task.Rescheduled.make({ deadline: `2030-04-${String((i % 28) + 1).padStart(2, "0")}` })
  ),
  Task.Completed.make({})
]

const taskCodec = EventCodec.make(TaskEvent)
const readStreams = 50

/** Folds a history through the task machine with every transition checked; dies unless all 100 events apply. */
const foldTask = (events: ReadonlyArray<TaskEvent>) => {
  const result = TaskMachine.fold(events)
  return Result.isSuccess(result) && result.success.eventCount === taskHistory.length
    ? Effect.void
    : Effect.die(new Error(`the task history did not fold: ${JSON.stringify(result)}`))
}

/** Workload 5: read one 100-event task stream and fold it through the task machine. */
const readAndFold = (variant: "R0" | "evently"): Variant => ({
  eventsPerOperation: taskHistory.length,
  prepare: () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const run = nextRun()
      const streamOf = (n: number) => `task-${run}n${n % readStreams}`
      // Both variants read streams written through evently's typed store, from the same `evently_events` table.
      const typed = EventCodec.typed(yield* eventlyStore({ notify: false }), taskCodec)
      yield* Effect.forEach(
        Array.from({ length: readStreams }, (_, n) => n),
        (n) => typed.append(streamOf(n), taskHistory, { expected: ExpectedVersion.NoStream })
      )
      const operation: Operation =
        variant === "evently"
          ? (worker, sequence) =>
              Effect.flatMap(Stream.runCollect(typed.readStream(streamOf(worker * 7 + sequence))), (recorded) =>
                foldTask(recorded.map((r) => r.event))
              )
          : (worker, sequence) =>
              Effect.flatMap(
                sql<{ type: string; data: string }>`select event_type as type, data::text as data
                  from ${sql(eventlyTables.events)} where stream = ${streamOf(worker * 7 + sequence)}
                  order by stream_version`,
                (rows) => foldTask(rows.map((row) => ({ ...JSON.parse(row.data), _tag: row.type }) as TaskEvent))
              )
      return { operation, check: Effect.succeed(`every read folded ${taskHistory.length} events without error`) }
    })
})

export const workloads: ReadonlyArray<Workload> = [
  {
    id: "w1",
    title: "1. append 1 event, new stream (NoStream)",
    concurrency: [1, 8, 32],
    eventsPerOperation: 1,
    seconds: { quick: 1, full: 10 },
    variants: {
      R0: newStream(1, "R0"),
      R1: newStream(1, "R1"),
      evently: newStream(1, { notify: true }),
      "R0 coalesced": newStream(1, "R0 coalesced"),
      "R0 batched, 1 conn.": r0Batched(1),
      "R0 batched, 2 conn.": r0Batched(2)
    }
  },
  {
    id: "w2",
    title: "2. append 1 event, existing stream (Exact)",
    concurrency: [1, 8, 32],
    eventsPerOperation: 1,
    seconds: { quick: 1, full: 10 },
    variants: {
      R0: existingStream("R0"),
      R1: existingStream("R1"),
      evently: existingStream({ notify: true }),
      "R0 coalesced": existingStream("R0 coalesced")
    }
  },
  ...[10, 100, 1000].map((size): Workload => ({
    id: `w3-${size}`,
    title: `3. batch of ${size}, new stream`,
    concurrency: [1, 4],
    eventsPerOperation: size,
    seconds: { quick: 1, full: 10 },
    variants: {
      R0: newStream(size, "R0"),
      R1: newStream(size, "R1"),
      evently: newStream(size, { notify: true })
    }
  })),
  {
    id: "w4",
    title: "4. hot stream: commands on one stream",
    concurrency: [8, 32],
    eventsPerOperation: 1,
    operationUnit: "command",
    seconds: { quick: 2, full: 10 },
    variants: {
      R1: hotStream("R1", hotCounts.R1),
      evently: hotStream("evently", hotCounts.evently),
      "evently, racing (oneAtATimePerStream: false)": hotStream("racing", hotCounts.racing)
    }
  },
  {
    id: "w5",
    title: "5. read a 100-event stream + fold (task machine)",
    concurrency: [1, 4],
    eventsPerOperation: taskHistory.length,
    operationUnit: "stream",
    seconds: { quick: 1, full: 10 },
    variants: { R0: readAndFold("R0"), evently: readAndFold("evently") }
  },
  {
    id: "w8",
    title: "8. NOTIFY cost: workload 1 at 8 writers",
    concurrency: [8],
    eventsPerOperation: 1,
    seconds: { quick: 1, full: 10 },
    variants: {
      R1: newStream(1, "R1"),
      "evently NOTIFY": newStream(1, { notify: true }),
      "evently no NOTIFY": newStream(1, { notify: false })
    }
  }
]
