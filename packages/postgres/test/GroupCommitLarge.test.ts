/**
 * The group-commit queue and appends of `maxEvents` events or more: they go out at once in their callers' fibers,
 * beside what is in flight and beyond `maxBatchesInFlight`, but never beside another append to their stream.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as GroupCommitQueue from "../src/internal/groupCommit.ts"

interface Item {
  readonly stream: string
  readonly eventIds: ReadonlyArray<string>
}

/** A queue whose `run` records each batch (its streams and fiber) and holds it until the test lets it finish. */
const harness = Effect.gen(function* () {
  const batches: Array<ReadonlyArray<string>> = []
  const gates: Array<Deferred.Deferred<void>> = []
  const fibers: Array<number> = []
  const interrupted: Array<boolean> = []
  const queue = GroupCommitQueue.make<Item, string, never>({
    context: yield* Effect.context<never>(),
    clock: yield* Clock.Clock,
    bounds: { maxAppends: 64, maxEvents: 100, maxBatchesInFlight: 2 },
    metrics: {
      batchSizes: Metric.histogram("test_large_batch_size", { boundaries: [1, 2, 4] }),
      flushes: Metric.counter("test_large_flushes")
    },
    run: (batch) =>
      Effect.gen(function* () {
        const gate = yield* Deferred.make<void>()
        const index = batches.length
        batches.push(batch.map((item) => item.stream))
        gates.push(gate)
        fibers.push(yield* Effect.fiberId)
        interrupted.push(false)
        yield* Deferred.await(gate).pipe(Effect.onInterrupt(() => Effect.sync(() => (interrupted[index] = true))))
        return batch.map((item) => Exit.succeed(`${item.stream} written`))
      })
  })
  let id = 0
  const submit = (stream: string, events = 1) =>
    Effect.forkChild(queue.submit({ stream, eventIds: Array.from({ length: events }, () => `${stream}/${++id}`) }), {
      startImmediately: true
    })
  /** Lets batch `index` finish, then lets every fiber run. */
  const finish = (index: number) => Effect.andThen(Deferred.succeed(gates[index]!, undefined), settle)
  return { batches, fibers, finish, interrupted, submit }
})

/** Lets every forked fiber run as far as it can. */
const settle = Effect.repeat(Effect.yieldNow, { times: 20 })

describe("group-commit queue, large appends", () => {
  it.effect("appends of maxEvents events or more go out at once in their callers' fibers, beyond the slots", () =>
    Effect.gen(function* () {
      const { batches, fibers, finish, submit } = yield* harness
      yield* submit("s-a")
      yield* settle
      yield* submit("s-b")
      const large = yield* Effect.forEach(["s-x", "s-y", "s-z"], (stream) => submit(stream, 100))
      yield* settle
      assert.deepStrictEqual(batches, [["s-a"], ["s-x"], ["s-y"], ["s-z"]], "three large appends beside s-a; s-b waits")
      assert.deepStrictEqual(
        fibers.slice(1),
        large.map((fiber) => fiber.id),
        "each large append ran in its caller's fiber"
      )
      yield* finish(0)
      assert.deepStrictEqual(batches[4], ["s-b"], "the small append went when the batch in flight finished")
      for (const index of [1, 2, 3, 4]) yield* finish(index)
      assert.deepStrictEqual(yield* Effect.forEach(large, Fiber.join), ["s-x written", "s-y written", "s-z written"])
    })
  )

  it.effect("a large append waits behind an append to its stream, and appends to its stream wait behind it", () =>
    Effect.gen(function* () {
      const { batches, finish, submit } = yield* harness
      yield* submit("s-a")
      yield* settle
      yield* submit("s-a", 100)
      yield* settle
      assert.deepStrictEqual(batches, [["s-a"]], "the large append to s-a waits for s-a's batch")
      yield* submit("s-y", 100)
      yield* settle
      assert.deepStrictEqual(batches, [["s-a"], ["s-y"]])
      yield* finish(0)
      assert.deepStrictEqual(batches, [["s-a"], ["s-y"], ["s-a"]], "s-a's large append went after s-a's batch")
      yield* finish(2)
      const small = yield* submit("s-y")
      yield* settle
      assert.strictEqual(batches.length, 3, "with no batch in flight, a small append to s-y waits for s-y's write")
      yield* finish(1)
      assert.deepStrictEqual(batches[3], ["s-y"])
      yield* finish(3)
      assert.strictEqual(yield* Fiber.join(small), "s-y written")
    })
  )

  it.effect("interrupting a large append interrupts its write and hands its stream back", () =>
    Effect.gen(function* () {
      const { batches, finish, interrupted, submit } = yield* harness
      yield* submit("s-a")
      yield* settle
      const large = yield* submit("s-y", 100)
      yield* settle
      yield* Fiber.interrupt(large)
      yield* settle
      assert.isTrue(interrupted[1], "the large append's write was interrupted")
      yield* finish(0)
      const small = yield* submit("s-y")
      yield* settle
      assert.deepStrictEqual(batches, [["s-a"], ["s-y"], ["s-y"]])
      yield* finish(2)
      assert.strictEqual(yield* Fiber.join(small), "s-y written")
    })
  )
})
