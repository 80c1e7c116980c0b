import { assert, describe, it } from "@effect/vitest"
import { EventStore, Subscriptions } from "@evently/store"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { layerLog } from "./memoryLog.ts"

const TestLayer = Subscriptions.layerMemory.pipe(Layer.provideMerge(layerLog))

const appendMany = (stream: string, count: number, type = "Happened") =>
  Effect.gen(function* () {
    const store = yield* EventStore.EventStore
    return yield* store.append(
      stream,
      Array.from({ length: count }, (_, i) => ({ type, data: { n: i } }))
    )
  })

const failOn3 = (event: EventStore.RecordedEvent) => (event.position === 3n ? Effect.fail("boom") : Effect.void)

describe("Subscriptions.layerMemory", () => {
  it.live("delivers every event once in order and resumes from the committed checkpoint", () =>
    Effect.gen(function* () {
      const subs = yield* Subscriptions.Subscriptions
      yield* appendMany("cat-1", 25)
      const first = yield* subs.subscribe("tail", { batchSize: 10 }).pipe(
        Stream.take(2),
        Stream.mapEffect((batch, i) => (i === 0 ? Effect.as(batch.commit, batch) : Effect.succeed(batch))),
        Stream.runCollect
      )
      assert.deepStrictEqual(
        first.map((batch) => batch.events.length),
        [10, 10]
      )
      // The second batch was not committed: it comes again.
      const again = yield* subs.subscribe("tail", { batchSize: 10 }).pipe(Stream.take(2), Stream.runCollect)
      assert.deepStrictEqual(
        again.flatMap((batch) => batch.events.map((event) => Number(event.position))),
        Array.from({ length: 15 }, (_, i) => i + 11)
      )
    }).pipe(Effect.provide(TestLayer))
  )

  it.live("filters by category and event type, and starts at the end or after a position", () =>
    Effect.gen(function* () {
      const subs = yield* Subscriptions.Subscriptions
      yield* appendMany("cat-1", 3, "Meowed")
      yield* appendMany("dog-1", 3, "Barked")
      yield* appendMany("cat-2", 2, "Slept")
      const cats = yield* subs
        .subscribe("cats", { categories: ["cat"], eventTypes: ["Slept"] })
        .pipe(Stream.take(1), Stream.runCollect)
      assert.deepStrictEqual(
        cats[0]!.events.map((event) => [event.stream, event.type]),
        [
          ["cat-2", "Slept"],
          ["cat-2", "Slept"]
        ]
      )
      const after = yield* subs
        .subscribe("after", { start: Subscriptions.After(6n) })
        .pipe(Stream.take(1), Stream.runCollect)
      assert.deepStrictEqual(
        after[0]!.events.map((event) => event.position),
        [7n, 8n]
      )
      const fiber = yield* subs
        .subscribe("end", { start: Subscriptions.End })
        .pipe(Stream.take(1), Stream.runCollect, Effect.forkChild)
      yield* Effect.sleep("50 millis")
      yield* appendMany("cat-3", 1)
      const end = yield* Fiber.join(fiber)
      assert.deepStrictEqual(
        end[0]!.events.map((event) => event.stream),
        ["cat-3"]
      )
    }).pipe(Effect.provide(TestLayer))
  )

  it.live("error policies: stop fails with HandlerFailed, skip parks, retry retries", () =>
    Effect.gen(function* () {
      const subs = yield* Subscriptions.Subscriptions
      yield* appendMany("cat-1", 5)

      const stopped = yield* Effect.flip(subs.run("stop", failOn3))
      assert.strictEqual(stopped._tag, "HandlerFailed")
      assert.strictEqual(stopped._tag === "HandlerFailed" ? stopped.position : 0n, 3n)

      const handled: Array<bigint> = []
      const skipping = yield* subs
        .run("skip", (event) => Effect.tap(failOn3(event), () => Effect.sync(() => handled.push(event.position))), {
          onError: Subscriptions.Skip
        })
        .pipe(Effect.forkChild)
      yield* subs.waitUntilCaughtUp("skip")
      yield* Fiber.interrupt(skipping)
      assert.deepStrictEqual(handled, [1n, 2n, 4n, 5n])
      const parked = yield* subs.parked("skip")
      assert.deepStrictEqual(
        parked.map((event) => [event.position, event.error]),
        [[3n, "boom"]]
      )

      let attempts = 0
      const retrying = yield* subs
        .run("retry", (event) => (event.position === 3n && ++attempts < 3 ? Effect.fail("flaky") : Effect.void), {
          onError: Subscriptions.Retry(Schedule.recurs(5))
        })
        .pipe(Effect.forkChild)
      yield* subs.waitUntilCaughtUp("retry")
      yield* Fiber.interrupt(retrying)
      assert.strictEqual(attempts, 3)
      assert.deepStrictEqual(yield* subs.parked("retry"), [])
    }).pipe(Effect.provide(TestLayer))
  )

  it.live("a consumer group of 3 over 100 streams handles every event once, in order per stream", () =>
    Effect.gen(function* () {
      const subs = yield* Subscriptions.Subscriptions
      for (let i = 0; i < 100; i++) yield* appendMany(`cat-${i}`, 5)
      const seen = new Map<string, Array<number>>()
      const byWorker = [0, 0, 0]
      const workers = yield* Effect.forEach([0, 1, 2], (partition) =>
        subs
          .run(
            "group",
            (event) =>
              Effect.sync(() => {
                byWorker[partition]!++
                seen.set(event.stream, [...(seen.get(event.stream) ?? []), event.streamVersion])
              }),
            { partitions: 3, partition, batchSize: 7 }
          )
          .pipe(Effect.forkChild)
      )
      yield* subs.waitUntilCaughtUp("group")
      yield* Effect.forEach(workers, Fiber.interrupt)
      assert.strictEqual(seen.size, 100)
      for (const versions of seen.values()) assert.deepStrictEqual(versions, [1, 2, 3, 4, 5])
      assert.strictEqual(
        byWorker.reduce((a, b) => a + b, 0),
        500
      )
      assert.isTrue(byWorker.every((count) => count > 0))
      const status = yield* subs.status("group")
      assert.deepStrictEqual(
        status.partitions.map((p) => [p.partition, p.lagEvents]),
        [
          [0, 0],
          [1, 0],
          [2, 0]
        ]
      )
    }).pipe(Effect.provide(TestLayer))
  )

  it.live("one active worker per partition: a second waits and takes over from the checkpoint", () =>
    Effect.gen(function* () {
      const subs = yield* Subscriptions.Subscriptions
      yield* appendMany("cat-1", 10)
      const handledBy: Array<[string, bigint]> = []
      const worker = (id: string) =>
        subs
          .run("single", (event) => Effect.sync(() => handledBy.push([id, event.position])), { batchSize: 1 })
          .pipe(Effect.forkChild)
      const a = yield* worker("a")
      yield* subs.waitUntilCaughtUp("single")
      const b = yield* worker("b")
      yield* appendMany("cat-1", 2)
      yield* subs.waitUntilCaughtUp("single")
      yield* Fiber.interrupt(a)
      yield* appendMany("cat-1", 3)
      yield* subs.waitUntilCaughtUp("single")
      yield* Fiber.interrupt(b)
      assert.deepStrictEqual(
        handledBy.map(([id]) => id),
        [...Array(12).fill("a"), ...Array(3).fill("b")]
      )
      assert.deepStrictEqual(
        handledBy.map(([, position]) => position),
        Array.from({ length: 15 }, (_, i) => BigInt(i + 1))
      )
      const status = yield* subs.status("single")
      assert.strictEqual(status.partitions[0]!.checkpoint.position, 15n)
      assert.strictEqual(status.partitions[0]!.lagEvents, 0)
    }).pipe(Effect.provide(TestLayer))
  )
})
