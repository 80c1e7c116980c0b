/**
 * The group-commit queue on its own, with a `run` that holds each batch until the test lets it finish and a
 * TestClock for "late": which appends go together, and when a second batch may start beside the first.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Scheduler from "effect/Scheduler"
import { TestClock } from "effect/testing"
import * as GroupCommitQueue from "../src/internal/groupCommit.ts"

interface Item {
  readonly stream: string
  readonly eventIds: ReadonlyArray<string>
}

const harness = (bounds: Partial<GroupCommitQueue.Bounds> = {}, options: { readonly held?: boolean } = {}) =>
  Effect.gen(function* () {
    const batches: Array<ReadonlyArray<string>> = []
    const gates: Array<Deferred.Deferred<void>> = []
    /** The fiber each batch ran in, and whether it was interrupted while held. */
    const fibers: Array<number> = []
    const interrupted: Array<boolean> = []
    const queue = GroupCommitQueue.make<Item, string, never>({
      context: yield* Effect.context<never>(),
      clock: yield* Clock.Clock,
      bounds: { maxAppends: 64, maxEvents: 1_000, maxBatchesInFlight: 2, ...bounds },
      metrics: {
        batchSizes: Metric.histogram("test_batch_size", { boundaries: [1, 2, 4] }),
        flushes: Metric.counter("test_flushes")
      },
      run: (batch) =>
        Effect.gen(function* () {
          const gate = yield* Deferred.make<void>()
          const index = batches.length
          batches.push(batch.map((item) => item.stream))
          gates.push(gate)
          fibers.push(yield* Effect.fiberId)
          interrupted.push(false)
          if (options.held !== false) {
            yield* Deferred.await(gate).pipe(Effect.onInterrupt(() => Effect.sync(() => (interrupted[index] = true))))
          }
          return batch.map((item) => Exit.succeed(`${item.stream} written`))
        })
    })
    let id = 0
    const item = (stream: string, events: number) => ({
      stream,
      eventIds: Array.from({ length: events }, () => `${stream}/${++id}`)
    })
    const submit = (stream: string, events = 1) =>
      Effect.forkChild(queue.submit(item(stream, events)), { startImmediately: true })
    /** Lets batch `index` finish, then lets every fiber run. */
    const finish = (index: number) => Effect.andThen(Deferred.succeed(gates[index]!, undefined), settle)
    return { batches, fibers, finish, interrupted, item, queue, submit }
  })

/** Lets every forked fiber run as far as it can. */
const settle = Effect.repeat(Effect.yieldNow, { times: 20 })

describe("group-commit queue", () => {
  it.effect("a lone append goes at once; appends arriving while it is written wait, then go together", () =>
    Effect.gen(function* () {
      const { batches, finish, submit } = yield* harness()
      const a = yield* submit("s-a")
      yield* settle
      assert.deepStrictEqual(batches, [["s-a"]])
      const rest = yield* Effect.forEach(["s-b", "s-c", "s-d"], submit)
      yield* settle
      assert.deepStrictEqual(batches, [["s-a"]], "a second, smaller batch does not start beside the first")
      yield* finish(0)
      assert.deepStrictEqual(batches, [["s-a"], ["s-b", "s-c", "s-d"]])
      yield* finish(1)
      assert.strictEqual(yield* Fiber.join(a), "s-a written")
      assert.deepStrictEqual(yield* Effect.forEach(rest, Fiber.join), ["s-b written", "s-c written", "s-d written"])
    })
  )

  it.effect("a lone append is written in its caller's fiber; a batch of waiting appends in a fiber of its own", () =>
    Effect.gen(function* () {
      const { batches, fibers, finish, submit } = yield* harness()
      const a = yield* submit("s-a")
      yield* settle
      const b = yield* submit("s-b")
      yield* settle
      yield* finish(0)
      assert.deepStrictEqual(batches, [["s-a"], ["s-b"]])
      assert.strictEqual(fibers[0], a.id, "the lone append ran in its caller's fiber")
      assert.notStrictEqual(fibers[1], b.id, "the batch taken from the queue ran in a fiber of its own")
      yield* finish(1)
      assert.strictEqual(yield* Fiber.join(b), "s-b written")
    })
  )

  it.effect("interrupting a lone append interrupts its write, and the appends waiting behind it go at once", () =>
    Effect.gen(function* () {
      const { batches, finish, interrupted, submit } = yield* harness()
      const a = yield* submit("s-a")
      yield* settle
      const rest = yield* Effect.forEach(["s-a", "s-b"], submit)
      yield* settle
      assert.deepStrictEqual(batches, [["s-a"]])
      yield* Fiber.interrupt(a)
      yield* settle
      assert.isTrue(interrupted[0], "the lone append's write was interrupted")
      assert.deepStrictEqual(batches, [["s-a"], ["s-a", "s-b"]], "its stream and its slot were handed back")
      yield* finish(1)
      assert.deepStrictEqual(yield* Effect.forEach(rest, Fiber.join), ["s-a written", "s-b written"])
    })
  )

  it.effect("a full batch starts beside the one in flight; what is left waits for a batch to finish", () =>
    Effect.gen(function* () {
      const { batches, finish, submit } = yield* harness({ maxAppends: 2 })
      yield* submit("s-a")
      yield* settle
      yield* Effect.forEach(["s-b", "s-c", "s-d"], submit)
      yield* settle
      assert.deepStrictEqual(batches, [["s-a"], ["s-b", "s-c"]])
      yield* finish(0)
      assert.deepStrictEqual(batches, [["s-a"], ["s-b", "s-c"]], "one append is not a full batch")
      yield* finish(1)
      assert.deepStrictEqual(batches, [["s-a"], ["s-b", "s-c"], ["s-d"]])
    })
  )

  it.effect("an append of maxEvents events or more is a full batch: it starts beside the one in flight", () =>
    Effect.gen(function* () {
      const { batches, finish, submit } = yield* harness({ maxEvents: 100 })
      yield* submit("s-a")
      yield* settle
      yield* submit("s-small", 99)
      yield* settle
      assert.deepStrictEqual(batches, [["s-a"]], "99 events do not fill a batch: they wait")
      yield* finish(0)
      assert.deepStrictEqual(batches, [["s-a"], ["s-small"]])
      yield* submit("s-big", 100)
      yield* settle
      assert.deepStrictEqual(batches, [["s-a"], ["s-small"], ["s-big"]], "100 events fill a batch on their own")
    })
  )

  it.effect("submitters interrupted at any point never leave the queue stuck", () =>
    Effect.gen(function* () {
      const { batches, item, queue } = yield* harness({ maxBatchesInFlight: 1 }, { held: false })
      for (let i = 0; i < 60; i++) {
        // A budget of a few operations makes the submitter's fiber yield, and so be interruptible, almost anywhere.
        const fiber = yield* Effect.forkChild(
          queue.submit(item(`s-${i}`, 1)).pipe(Effect.provideService(Scheduler.MaxOpsBeforeYield, 2 + (i % 7))),
          { startImmediately: true }
        )
        yield* Effect.repeat(Effect.yieldNow, { times: Math.floor(i / 7) % 4 })
        yield* Fiber.interrupt(fiber)
      }
      yield* settle
      const last = yield* Effect.forkChild(queue.submit(item("s-last", 1)), { startImmediately: true })
      yield* settle
      yield* TestClock.adjust("1 second")
      yield* settle
      assert.isTrue(
        batches.some((batch) => batch.includes("s-last")),
        `s-last was written: ${JSON.stringify(batches)}`
      )
      assert.strictEqual(yield* Fiber.join(last), "s-last written")
    })
  )

  it.effect("a batch that is late (twice the typical batch time) lets the next one start beside it", () =>
    Effect.gen(function* () {
      const { batches, submit } = yield* harness()
      yield* submit("s-a")
      yield* settle
      yield* submit("s-b")
      yield* settle
      assert.deepStrictEqual(batches, [["s-a"]])
      // The typical batch time starts at 1 ms, so the first batch is late after 2.
      yield* TestClock.adjust("1 millis")
      yield* settle
      assert.deepStrictEqual(batches, [["s-a"]])
      yield* TestClock.adjust("1 millis")
      yield* settle
      assert.deepStrictEqual(batches, [["s-a"], ["s-b"]])
    })
  )

  it.effect("one batch held up for long does not make the next ones slow to be called late", () =>
    Effect.gen(function* () {
      const { batches, finish, submit } = yield* harness()
      yield* submit("s-a")
      yield* settle
      yield* TestClock.adjust("10 seconds")
      yield* finish(0)
      yield* submit("s-b")
      yield* settle
      yield* submit("s-c")
      yield* settle
      assert.deepStrictEqual(batches, [["s-a"], ["s-b"]])
      // The 10 s batch counted as 5 ms (4 typical + 1): typical 1.5 ms, so late after 3 ms, not after seconds.
      yield* TestClock.adjust("3 millis")
      yield* settle
      assert.deepStrictEqual(batches, [["s-a"], ["s-b"], ["s-c"]])
    })
  )

  it.effect("two appends to one stream never share a batch nor overlap, even when the first is late", () =>
    Effect.gen(function* () {
      const { batches, finish, submit } = yield* harness()
      yield* Effect.forEach(["s-x", "s-x", "s-y"], submit)
      yield* settle
      assert.deepStrictEqual(batches, [["s-x"]])
      yield* TestClock.adjust("1 second")
      yield* settle
      assert.deepStrictEqual(batches, [["s-x"], ["s-y"]], "late: s-y goes, the second append to s-x still waits")
      yield* finish(0)
      assert.deepStrictEqual(batches, [["s-x"], ["s-y"], ["s-x"]])
    })
  )

  it.effect("an append interrupted before its batch is taken is never written", () =>
    Effect.gen(function* () {
      const { batches, finish, submit } = yield* harness()
      yield* submit("s-a")
      yield* settle
      const b = yield* submit("s-b")
      yield* submit("s-c")
      yield* settle
      yield* Fiber.interrupt(b)
      assert.isTrue(Exit.hasInterrupts(yield* Fiber.await(b)))
      yield* finish(0)
      assert.deepStrictEqual(batches, [["s-a"], ["s-c"]])
    })
  )
})
