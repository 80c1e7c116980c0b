/**
 * The lag samples behind the page's chart: each time the subscriptions are read, the events behind of every
 * subscription (summed over its partitions) is kept with the time, at most one sample per second and for the last
 * `window` (older samples are dropped). Kept in memory by the explorer's layer: the chart covers the minutes the
 * page (or anything polling the API) has been looking.
 */
import * as Ref from "effect/Ref"
import * as Effect from "effect/Effect"
import type * as PgOperations from "@evently/postgres/PgOperations"

/** One sample: when, and the events behind per subscription. */
export interface Sample {
  readonly at: number
  readonly lag: Readonly<Record<string, number>>
}

/** A history of samples. */
export interface LagHistory {
  readonly record: (now: number, partitions: ReadonlyArray<PgOperations.PartitionReport>) => Effect.Effect<void>
  readonly samples: Effect.Effect<ReadonlyArray<Sample>>
}

/** A history keeping `windowMillis` of samples. */
export const make = (windowMillis: number): Effect.Effect<LagHistory> =>
  Effect.map(Ref.make<ReadonlyArray<Sample>>([]), (ref) => ({
    record: (now, partitions) =>
      Ref.update(ref, (samples) => {
        const last = samples[samples.length - 1]
        if (last !== undefined && now - last.at < 1000) return samples
        // A Map, not an object literal: a subscription may be named `constructor` or `__proto__`.
        const lag = new Map<string, number>()
        for (const p of partitions) lag.set(p.subscription, (lag.get(p.subscription) ?? 0) + p.lagEvents)
        return [...samples.filter((s) => now - s.at <= windowMillis), { at: now, lag: Object.fromEntries(lag) }]
      }),
    samples: Ref.get(ref)
  }))
