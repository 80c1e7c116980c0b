/**
 * The benchmark's workloads, each with its raw-SQL baselines and evently's variant, measured at the same
 * concurrencies in the same run.
 */
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as SqlClient from "effect/sql/SqlClient"
import { type BenchEvent, r0Append, r1Append } from "./Baselines.ts"

/** One operation of one worker: returns how many events it handled when that is not the workload's fixed number. */
export type Operation = (worker: number, sequence: number) => Effect.Effect<number | void, unknown>

/** Builds a variant's operation for a concurrency (setting up whatever data it needs first). */
export type Variant = (concurrency: number) => Effect.Effect<Operation, unknown, SqlClient.SqlClient>

export interface Workload {
  readonly id: string
  readonly title: string
  readonly concurrency: ReadonlyArray<number>
  readonly eventsPerOperation: number
  readonly seconds: { readonly quick: number; readonly full: number }
  readonly variants: Readonly<Record<string, Variant>>
}

const payload = JSON.stringify({ description: "Water the plants", assignee: "alice", priority: 3 })

let runId = 0
/** Unique per variant run, so no variant ever meets another's streams. */
const nextRun = () => `r${++runId}`

const batch = (run: string, worker: number, sequence: number, size: number): Array<BenchEvent> =>
  Array.from({ length: size }, (_, i) => ({
    eventId: uuidFor(run, worker, sequence, i),
    type: "Created",
    data: payload
  }))

// Deterministic, distinct v4-shaped UUIDs without a random source on the hot path.
const hex = (n: number, width: number) => n.toString(16).padStart(width, "0").slice(-width)
const uuidFor = (run: string, worker: number, sequence: number, index: number) =>
  `${hex(Number(run.slice(1)), 8)}-${hex(worker, 4)}-4${hex(index, 3)}-8${hex(sequence >>> 16, 3)}-${hex(sequence & 0xffff, 4)}${hex(Math.floor(sequence / 2 ** 32), 8)}`

const now = Effect.map(DateTime.now, DateTime.toDateUtc)

const newStream =
  (size: number, append: "R0" | "R1"): Variant =>
  () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const run = nextRun()
      return (worker, sequence) =>
        Effect.flatMap(now, (at) => {
          const stream = `bench-${run}w${worker}s${sequence}`
          const events = batch(run, worker, sequence, size)
          return Effect.asVoid(
            append === "R0"
              ? r0Append(sql, "r0_events", stream, 1, events, at)
              : r1Append(sql, { events: "r1_events", streams: "r1_streams" }, stream, 0, events, at)
          )
        })
    })

const existingStream =
  (append: "R0" | "R1"): Variant =>
  (concurrency) =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const run = nextRun()
      const versions = Array.from({ length: concurrency }, () => 0)
      return (worker, sequence) =>
        Effect.flatMap(now, (at) => {
          const stream = `bench-${run}w${worker}`
          const events = batch(run, worker, sequence, 1)
          const expected = versions[worker]!
          versions[worker] = expected + 1
          return append === "R0"
            ? Effect.asVoid(r0Append(sql, "r0_events", stream, expected + 1, events, at))
            : Effect.flatMap(
                r1Append(sql, { events: "r1_events", streams: "r1_streams" }, stream, expected, events, at),
                (rows) => (rows.length === 1 ? Effect.void : Effect.die(new Error(`R1 conflict on ${stream}`)))
              )
        })
    })

export const workloads: ReadonlyArray<Workload> = [
  {
    id: "w1",
    title: "1. append 1 event, new stream (NoStream)",
    concurrency: [1, 8],
    eventsPerOperation: 1,
    seconds: { quick: 3, full: 15 },
    variants: { R0: newStream(1, "R0"), R1: newStream(1, "R1") }
  },
  {
    id: "w2",
    title: "2. append 1 event, existing stream (Exact)",
    concurrency: [1, 8],
    eventsPerOperation: 1,
    seconds: { quick: 3, full: 15 },
    variants: { R0: existingStream("R0"), R1: existingStream("R1") }
  },
  ...[10, 100, 1000].map((size): Workload => ({
    id: `w3-${size}`,
    title: `3. batch of ${size}, new stream`,
    concurrency: [1, 4],
    eventsPerOperation: size,
    seconds: { quick: 3, full: 15 },
    variants: { R0: newStream(size, "R0"), R1: newStream(size, "R1") }
  }))
]
