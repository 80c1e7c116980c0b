/**
 * Runs one workload variant: N concurrent workers repeat an operation until a deadline, and the run reports
 * events/s, latency percentiles and the client's CPU time per 1,000 events.
 */
import * as Effect from "effect/Effect"

export interface Measurement {
  readonly events: number
  readonly operations: number
  readonly seconds: number
  readonly eventsPerSecond: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly cpuSecondsPer1k: number
}

export interface Options<E, R> {
  readonly concurrency: number
  readonly seconds: number
  readonly warmupSeconds?: number
  /** Events written or read by one operation. */
  readonly eventsPerOperation: number
  /** One operation of worker `worker`, its `sequence`-th. Returns how many events it handled, when that varies. */
  readonly operation: (worker: number, sequence: number) => Effect.Effect<number | void, E, R>
}

/** Nearest-rank percentile of ascending samples: the smallest sample with at least `p`% of samples at or below it. */
export const percentile = (sorted: ArrayLike<number>, p: number): number =>
  sorted.length === 0
    ? Number.NaN
    : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((sorted.length * p) / 100) - 1))]!

/** The figures of a run from its raw samples: latencies in ms, events handled, wall seconds, client CPU µs. */
export const summarize = (input: {
  readonly latencies: ReadonlyArray<number>
  readonly events: number
  readonly seconds: number
  readonly cpuMicros: number
}): Measurement => {
  const sorted = Float64Array.from(input.latencies).sort()
  return {
    events: input.events,
    operations: input.latencies.length,
    seconds: input.seconds,
    eventsPerSecond: input.events / input.seconds,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    cpuSecondsPer1k: input.events === 0 ? Number.NaN : (input.cpuMicros / 1e6 / input.events) * 1000
  }
}

const runFor = <E, R>(options: Options<E, R>, seconds: number, firstSequence: number) =>
  Effect.gen(function* () {
    const latencies: Array<number> = []
    let events = 0
    const deadline = performance.now() + seconds * 1000
    const cpuBefore = process.cpuUsage()
    const started = performance.now()
    yield* Effect.forEach(
      Array.from({ length: options.concurrency }, (_, worker) => worker),
      (worker) =>
        Effect.gen(function* () {
          let sequence = firstSequence
          while (performance.now() < deadline) {
            const t0 = performance.now()
            const handled = yield* options.operation(worker, sequence++)
            latencies.push(performance.now() - t0)
            events += typeof handled === "number" ? handled : options.eventsPerOperation
          }
        }),
      { concurrency: "unbounded", discard: true }
    )
    const elapsed = (performance.now() - started) / 1000
    const cpu = process.cpuUsage(cpuBefore)
    return summarize({ latencies, events, seconds: elapsed, cpuMicros: cpu.user + cpu.system })
  })

/** Warms up (results discarded), then measures. Sequences keep increasing so warm-up ids are never reused. */
export const measure = <E, R>(options: Options<E, R>): Effect.Effect<Measurement, E, R> =>
  Effect.gen(function* () {
    const warmup = options.warmupSeconds ?? Math.min(1, options.seconds / 4)
    if (warmup > 0) yield* runFor(options, warmup, 1_000_000_000)
    return yield* runFor(options, options.seconds, 0)
  })
