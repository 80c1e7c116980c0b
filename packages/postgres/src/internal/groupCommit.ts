/**
 * The group-commit queue: appends submitted by concurrent fibers wait in a queue, and whenever a write slot is free
 * the queue takes as many of them as the bounds allow into one batch and hands it to `run`. With no concurrency a
 * lone append finds a free slot and goes out at once: there is no timer, a batch is whatever arrived while the
 * previous writes were in flight ("flush when idle").
 *
 * Meaning is kept per stream: a batch never holds two appends to the same stream, and an append waits while another
 * batch in flight writes its stream, so appends to one stream are written one after the other, in submission order.
 * A batch also never holds the same event id twice (the later append goes to a later batch, where the store sees the
 * id stored and decides idempotency as usual).
 */
import * as Cause from "effect/Cause"
import type * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"

/** The bounds of a batch and how many batches may be written at the same time. */
export interface Bounds {
  readonly maxAppends: number
  readonly maxEvents: number
  readonly maxBatchesInFlight: number
}

/** What the queue needs to know of an append to place it in a batch. */
export interface Item {
  readonly stream: string
  readonly eventIds: ReadonlyArray<string>
}

interface Entry<I extends Item, A, E> {
  readonly item: I
  readonly deferred: Deferred.Deferred<A, E>
}

/** The metrics a queue updates: one flush and one batch-size observation per batch taken from the queue. */
export interface Metrics {
  readonly batchSizes: Metric.Metric<number, unknown>
  readonly flushes: Metric.Metric<number, unknown>
}

/**
 * A queue over `run`, which writes a batch and returns one exit per item, in order. `submit` resolves with the
 * item's own exit. A failure of `run` itself (a defect) fails every item of that batch with that cause. Batches run
 * in fibers of their own with `context` (the store's, not that of whichever caller happened to start them), which is
 * also where the metrics are updated.
 */
export const make = <I extends Item, A, E>(options: {
  readonly context: Context.Context<never>
  readonly bounds: Bounds
  readonly metrics: Metrics
  readonly run: (batch: ReadonlyArray<I>) => Effect.Effect<ReadonlyArray<Exit.Exit<A, E>>>
}) => {
  const { maxAppends, maxBatchesInFlight, maxEvents } = options.bounds
  const pending: Array<Entry<I, A, E>> = []
  const writing = new Set<string>()
  let inFlight = 0

  /** Takes the next batch from the queue, in submission order, skipping what must wait; undefined when none. */
  const take = (): Array<Entry<I, A, E>> | undefined => {
    const batch: Array<Entry<I, A, E>> = []
    const streams = new Set<string>()
    const ids = new Set<string>()
    const waiting = new Set<string>()
    let events = 0
    const rest: Array<Entry<I, A, E>> = []
    for (const entry of pending) {
      const { eventIds, stream } = entry.item
      const fits =
        batch.length < maxAppends &&
        (batch.length === 0 || events + eventIds.length <= maxEvents) &&
        !writing.has(stream) &&
        !streams.has(stream) &&
        !waiting.has(stream) &&
        !eventIds.some((id) => ids.has(id))
      if (fits) {
        batch.push(entry)
        streams.add(stream)
        for (const id of eventIds) ids.add(id)
        events += eventIds.length
      } else {
        // A later append to this stream must not overtake this one.
        waiting.add(stream)
        rest.push(entry)
      }
    }
    if (batch.length === 0) return undefined
    pending.splice(0, pending.length, ...rest)
    return batch
  }

  const complete = (batch: ReadonlyArray<Entry<I, A, E>>, exits: Exit.Exit<ReadonlyArray<Exit.Exit<A, E>>>) =>
    Effect.sync(() => {
      batch.forEach((entry, index) => {
        const exit = Exit.isSuccess(exits)
          ? (exits.value[index] ?? Exit.die(new Error("group commit: no outcome for an append of the batch")))
          : Exit.failCause(Cause.die(Cause.squash(exits.cause)))
        Deferred.doneUnsafe(entry.deferred, exit)
      })
    })

  const flush = (batch: ReadonlyArray<Entry<I, A, E>>): Effect.Effect<void> =>
    Effect.exit(options.run(batch.map((entry) => entry.item))).pipe(
      Effect.flatMap((exits) => complete(batch, exits)),
      Effect.ensuring(
        Effect.suspend(() => {
          inFlight--
          for (const entry of batch) writing.delete(entry.item.stream)
          // Let the writers just completed submit their next appends first, so they join the next batch.
          return Effect.andThen(Effect.yieldNow, pump)
        })
      )
    )

  /** Starts a batch in every free write slot, as long as the queue has appends that may go. */
  const pump: Effect.Effect<void> = Effect.suspend(() => {
    const batches: Array<Array<Entry<I, A, E>>> = []
    while (inFlight < maxBatchesInFlight) {
      const batch = take()
      if (batch === undefined) break
      inFlight++
      for (const entry of batch) writing.add(entry.item.stream)
      batches.push(batch)
    }
    return Effect.forEach(
      batches,
      (batch) =>
        Effect.forkDetach(
          Effect.andThen(
            Effect.all([
              Metric.update(options.metrics.flushes, 1),
              Metric.update(options.metrics.batchSizes, batch.length)
            ]),
            flush(batch)
          ).pipe(Effect.provideContext(options.context))
        ),
      { discard: true }
    )
  })

  /** Queues an append and waits for its own outcome. Interrupted before its batch is taken, it is never written. */
  const submit = (item: I): Effect.Effect<A, E> =>
    Effect.suspend(() => {
      const entry: Entry<I, A, E> = { item, deferred: Deferred.makeUnsafe<A, E>() }
      pending.push(entry)
      return Effect.andThen(pump, Deferred.await(entry.deferred)).pipe(
        Effect.onInterrupt(() =>
          Effect.sync(() => {
            const index = pending.indexOf(entry)
            if (index >= 0) pending.splice(index, 1)
          })
        )
      )
    })

  return { submit }
}
