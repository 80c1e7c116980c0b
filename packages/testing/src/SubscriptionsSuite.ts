/**
 * The behavioural suite every `Subscriptions` layer passes: delivery and resume, filters and starts, error policies,
 * consumer groups, one active worker per partition, status and `waitUntilCaughtUp`.
 *
 * @since 0.1.0
 */
import { assert, it } from "@effect/vitest"
import { EventStore, Subscriptions } from "@evently/store"
import type * as SubscriptionLifecycle from "@evently/store/SubscriptionLifecycle"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"

/**
 * What the suite needs from a layer under test: a fresh `layer` for each test (an empty log) and a way to `append`
 * `count` events of `type` to a stream in one commit, returning their positions.
 *
 * @since 0.1.0
 * @category models
 */
export interface SuiteOptions<R> {
  readonly layer: () => Layer.Layer<Subscriptions.Subscriptions | R>
  readonly append: (stream: string, count: number, type?: string) => Effect.Effect<ReadonlyArray<bigint>, unknown, R>
}

/**
 * Appends `count` events through the `EventStore` in context: the suite's `append` for any layer with a store.
 *
 * @since 0.1.0
 * @category suites
 */
export const appendThroughStore = Effect.fnUntraced(function* (stream: string, count: number, type = "Happened") {
  const store = yield* EventStore.EventStore
  const result = yield* store.append(
    stream,
    Array.from({ length: count }, (_, i) => ({ type, data: { n: i } }))
  )
  return result.positions
})

const untilActive = (subs: Subscriptions.Subscriptions["Service"], name: string) =>
  subs.status(name).pipe(
    Effect.repeat({
      until: (status: Subscriptions.Status) => status.partitions.length > 0,
      schedule: Schedule.spaced("10 millis")
    })
  )

/**
 * Watches the lifecycle of every subscription of the service into an array, from before the returned effect ends:
 * it waits until the watcher has seen the `Started` of a probe run (so it is subscribed) and the probe has caught up
 * with what was appended before, then stops the probe.
 *
 * @since 0.1.0
 * @category suites
 */
export const watchLifecycle = Effect.fnUntraced(function* (subs: Subscriptions.Subscriptions["Service"]) {
  const seen: Array<SubscriptionLifecycle.LifecycleEvent> = []
  yield* subs.lifecycle().pipe(
    Stream.runForEach((event) => Effect.sync(() => seen.push(event))),
    Effect.forkScoped
  )
  const probe = yield* subs.run("lifecycle-probe", () => Effect.void, { ephemeral: true }).pipe(Effect.forkChild)
  yield* until(() => seen.some((event) => event.subscription === "lifecycle-probe"))
  // Once the probe has read everything appended before, a new session counts all of it as behind: on Postgres a
  // transaction still open elsewhere on the server would otherwise hold some of it back from the count.
  yield* subs.waitUntilCaughtUp("lifecycle-probe")
  yield* Fiber.interrupt(probe)
  return seen
})

/**
 * Waits (polling every 10 ms) until `condition` holds.
 *
 * @since 0.1.0
 * @category suites
 */
export const until = (condition: () => boolean): Effect.Effect<void> =>
  Effect.repeat(Effect.sync(condition), {
    until: (done: boolean) => done,
    schedule: Schedule.spaced("10 millis")
  }).pipe(Effect.asVoid)

/**
 * The phases one subscription went through, as `[tag, fields]` pairs (without `_tag`), in order.
 *
 * @since 0.1.0
 * @category suites
 */
export const phasesOf = (
  seen: ReadonlyArray<SubscriptionLifecycle.LifecycleEvent>,
  subscription: string
): ReadonlyArray<SubscriptionLifecycle.Phase> =>
  seen.filter((event) => event.subscription === subscription).map((event) => event.phase)

/**
 * Registers the suite's tests (call it inside a `describe`).
 *
 * @since 0.1.0
 * @category suites
 */
export const subscriptionsSuite = <R>(options: SuiteOptions<R>): void => {
  const { append } = options
  const live = (name: string, test: () => Effect.Effect<void, unknown, Subscriptions.Subscriptions | R>) =>
    it.live(name, () => Effect.provide(test(), options.layer()), 60_000)

  live("options that cannot work are refused with a typed error before any read", () =>
    Effect.gen(function* () {
      const subs = yield* Subscriptions.Subscriptions
      const refusals = yield* Effect.forEach(
        [{ batchSize: 0 }, { batchSize: 2.5 }, { partitions: 0 }, { partitions: 3, partition: 3 }, { partition: -1 }],
        (opts) => Effect.flip(Stream.runDrain(subs.subscribe("invalid", opts)))
      )
      assert.deepStrictEqual(
        refusals.map((error) => error._tag),
        refusals.map(() => "InvalidSubscription")
      )
      assert.include(refusals[3]!.message, "partition 3 is not one of 0..2")
    })
  )

  live("names, filters and starts that cannot work are refused before any I/O, by every operation", () =>
    Effect.gen(function* () {
      const subs = yield* Subscriptions.Subscriptions
      const badNames = ["", "a\u0000b", "cat-\ud800", "bell\u0007", "x".repeat(201)]
      for (const name of badNames) {
        const errors = [
          yield* Effect.flip(Stream.runDrain(subs.subscribe(name))),
          yield* Effect.flip(subs.run(name, () => Effect.void)),
          yield* Effect.flip(subs.status(name)),
          yield* Effect.flip(subs.waitUntilCaughtUp(name, { timeout: "1 second" })),
          yield* Effect.flip(subs.parked(name))
        ]
        assert.deepStrictEqual(
          errors.map((error) => error._tag),
          errors.map(() => "InvalidSubscription"),
          JSON.stringify(name)
        )
      }
      const badOptions: ReadonlyArray<Subscriptions.SubscribeOptions> = [
        { categories: ["cat-1"] },
        { categories: ["\ud800"] },
        { eventTypes: [""] },
        { eventTypes: ["a\u0000"] },
        { start: Subscriptions.After(-1n) },
        { start: Subscriptions.After(2n ** 70n) },
        { batchSize: 2 ** 40 },
        { batchSize: Number.NaN },
        { pollInterval: "soon" as never },
        { pollInterval: -5 },
        { pollInterval: Number.NaN }
      ]
      const refusals = yield* Effect.forEach(badOptions, (opts) =>
        Effect.flip(Stream.runDrain(subs.subscribe("options", opts)))
      )
      assert.deepStrictEqual(
        refusals.map((error) => error._tag),
        refusals.map(() => "InvalidSubscription")
      )
      // Nothing was created: the name has no checkpoint.
      assert.deepStrictEqual((yield* subs.status("options")).partitions, [])
      // A wait's timeout that is not a duration is a typed refusal, not a defect.
      const waits = yield* Effect.forEach(["soon" as never, -5, Number.NaN], (timeout) =>
        Effect.flip(subs.waitUntilCaughtUp("options", { timeout }))
      )
      assert.deepStrictEqual(
        waits.map((error) => error._tag),
        waits.map(() => "InvalidSubscription")
      )
      assert.include(waits[0]!.message, "timeout must be a duration")
    })
  )

  live("ephemeral: side by side under one name, visible to status and waitUntilCaughtUp, gone when it ends", () =>
    Effect.gen(function* () {
      const subs = yield* Subscriptions.Subscriptions
      const positions = yield* append("cat-1", 12)
      const seen: [Array<bigint>, Array<bigint>] = [[], []]
      const tails = yield* Effect.forEach([0, 1] as const, (i) =>
        subs
          .run("tail", (event) => Effect.sync(() => seen[i].push(event.position)), { ephemeral: true, batchSize: 5 })
          .pipe(Effect.forkChild)
      )
      yield* subs.waitUntilCaughtUp("tail")
      const more = yield* append("cat-2", 3)
      yield* subs.waitUntilCaughtUp("tail")
      const status = yield* subs.status("tail")
      assert.deepStrictEqual(
        status.partitions.map((p) => [p.partition, p.checkpoint.position, p.lagEvents]),
        [[0, more[2]!, 0]]
      )
      yield* Effect.forEach(tails, Fiber.interrupt)
      assert.deepStrictEqual(seen[0], [...positions, ...more])
      assert.deepStrictEqual(seen[1], [...positions, ...more])
      // Nothing is left behind: no checkpoint, and a new ephemeral subscription starts over from its start.
      assert.deepStrictEqual((yield* subs.status("tail")).partitions, [])
      const again = yield* subs
        .subscribe("tail", { ephemeral: true, batchSize: 100 })
        .pipe(Stream.take(1), Stream.runCollect)
      assert.deepStrictEqual(
        again[0]!.events.map((event) => event.position),
        [...positions, ...more]
      )
    })
  )

  live("delivers every event once in order and resumes from the committed checkpoint", () =>
    Effect.gen(function* () {
      const subs = yield* Subscriptions.Subscriptions
      const positions = yield* append("cat-1", 25)
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
        again.flatMap((batch) => batch.events.map((event) => event.position)),
        positions.slice(10)
      )
    })
  )

  live("filters by category and event type, and starts at the end or after an event", () =>
    Effect.gen(function* () {
      const subs = yield* Subscriptions.Subscriptions
      yield* append("cat-1", 3, "Meowed")
      const dogs = yield* append("dog-1", 3, "Barked")
      const slept = yield* append("cat-2", 2, "Slept")
      const cats = yield* subs
        .subscribe("cats", { categories: ["cat"], eventTypes: ["Slept"] })
        .pipe(Stream.take(1), Stream.runCollect)
      assert.deepStrictEqual(
        cats[0]!.events.map((event) => [event.stream, event.type, event.position]),
        slept.map((position) => ["cat-2", "Slept", position])
      )
      const after = yield* subs
        .subscribe("after", { start: Subscriptions.After(dogs[2]!) })
        .pipe(Stream.take(1), Stream.runCollect)
      assert.deepStrictEqual(
        after[0]!.events.map((event) => event.position),
        slept
      )
      const fiber = yield* subs
        .subscribe("end", { start: Subscriptions.End })
        .pipe(Stream.take(1), Stream.runCollect, Effect.forkChild)
      yield* untilActive(subs, "end")
      const later = yield* append("cat-3", 1)
      const end = yield* Fiber.join(fiber)
      assert.deepStrictEqual(
        end[0]!.events.map((event) => event.position),
        later
      )
    })
  )

  live("transactional error policies: skip parks and retry retries as plain ones do; a redone batch counts once", () =>
    Effect.gen(function* () {
      const subs = yield* Subscriptions.Subscriptions
      const positions = yield* append("cat-1", 5)
      const bad = positions[2]!
      const seen = yield* watchLifecycle(subs)
      const handled = new Set<bigint>()
      const skipping = yield* subs
        .run(
          "tx-skip",
          (event) => (event.position === bad ? Effect.fail("boom") : Effect.sync(() => handled.add(event.position))),
          { categories: ["cat"], batchSize: 10, transactional: true, onError: Subscriptions.Skip }
        )
        .pipe(Effect.forkChild)
      yield* subs.waitUntilCaughtUp("tx-skip")
      yield* until(() => phasesOf(seen, "tx-skip").some((phase) => phase._tag === "CaughtUp"))
      yield* Fiber.interrupt(skipping)
      assert.deepStrictEqual(
        positions.filter((position) => handled.has(position)),
        positions.filter((position) => position !== bad)
      )
      assert.deepStrictEqual(
        (yield* subs.parked("tx-skip")).map((event) => [event.position, event.error]),
        [[bad, "boom"]]
      )
      // Adapters with transactions handle the batch again after the failure: the lifecycle counts it once.
      const caughtUp = phasesOf(seen, "tx-skip").find((phase) => phase._tag === "CaughtUp")
      assert.strictEqual(caughtUp?._tag === "CaughtUp" ? caughtUp.events : -1, 5)

      // It would succeed on a 4th attempt; the schedule allows 2 retries after the first failure, as without
      // transactions: a failure that makes the batch start over is the first of the policy's attempts, not an extra.
      let attempts = 0
      const retrying = yield* subs
        .run("tx-retry", (event) => (event.position === bad && ++attempts <= 3 ? Effect.fail("flaky") : Effect.void), {
          categories: ["cat"],
          transactional: true,
          onError: Subscriptions.Retry(Schedule.recurs(2), { exhausted: "Skip" })
        })
        .pipe(Effect.forkChild)
      yield* subs.waitUntilCaughtUp("tx-retry")
      yield* Fiber.interrupt(retrying)
      assert.strictEqual(attempts, 3)
      assert.deepStrictEqual(
        (yield* subs.parked("tx-retry")).map((event) => [event.position, event.error]),
        [[bad, "flaky"]]
      )
    }).pipe(Effect.scoped)
  )

  live("error policies: stop fails with HandlerFailed, skip parks, retry retries", () =>
    Effect.gen(function* () {
      const subs = yield* Subscriptions.Subscriptions
      const positions = yield* append("cat-1", 5)
      const bad = positions[2]!
      const failOnBad = (event: EventStore.RecordedEvent) =>
        event.position === bad ? Effect.fail("boom") : Effect.void

      const stopped = yield* Effect.flip(subs.run("stop", failOnBad))
      assert.strictEqual(stopped._tag, "HandlerFailed")
      assert.strictEqual(stopped._tag === "HandlerFailed" ? stopped.position : 0n, bad)

      const handled: Array<bigint> = []
      const skipping = yield* subs
        .run("skip", (event) => Effect.tap(failOnBad(event), () => Effect.sync(() => handled.push(event.position))), {
          onError: Subscriptions.Skip
        })
        .pipe(Effect.forkChild)
      yield* subs.waitUntilCaughtUp("skip")
      yield* Fiber.interrupt(skipping)
      assert.deepStrictEqual(
        handled,
        positions.filter((position) => position !== bad)
      )
      const parked = yield* subs.parked("skip")
      assert.deepStrictEqual(
        parked.map((event) => [event.position, event.error]),
        [[bad, "boom"]]
      )

      let attempts = 0
      const retrying = yield* subs
        .run("retry", (event) => (event.position === bad && ++attempts < 3 ? Effect.fail("flaky") : Effect.void), {
          onError: Subscriptions.Retry(Schedule.recurs(5))
        })
        .pipe(Effect.forkChild)
      yield* subs.waitUntilCaughtUp("retry")
      yield* Fiber.interrupt(retrying)
      assert.strictEqual(attempts, 3)
      assert.deepStrictEqual(yield* subs.parked("retry"), [])

      const exhausted = yield* subs
        .run("exhausted", failOnBad, { onError: Subscriptions.Retry(Schedule.recurs(2), { exhausted: "Skip" }) })
        .pipe(Effect.forkChild)
      yield* subs.waitUntilCaughtUp("exhausted")
      yield* Fiber.interrupt(exhausted)
      assert.deepStrictEqual(
        (yield* subs.parked("exhausted")).map((event) => event.position),
        [bad]
      )
    })
  )

  live("a consumer group of 3 over 100 streams handles every event once, in order per stream", () =>
    Effect.gen(function* () {
      const subs = yield* Subscriptions.Subscriptions
      for (let version = 0; version < 5; version++) {
        yield* Effect.forEach(
          Array.from({ length: 100 }, (_, i) => i),
          (i) => append(`cat-${i}`, 1),
          { concurrency: 4, discard: true }
        )
      }
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
    })
  )

  live("one active worker per partition: a second waits and takes over from the checkpoint", () =>
    Effect.gen(function* () {
      const subs = yield* Subscriptions.Subscriptions
      const positions = [...(yield* append("cat-1", 10))]
      const handledBy: Array<[string, bigint]> = []
      const worker = (id: string) =>
        subs
          .run("single", (event) => Effect.sync(() => handledBy.push([id, event.position])), { batchSize: 1 })
          .pipe(Effect.forkChild)
      const a = yield* worker("a")
      yield* subs.waitUntilCaughtUp("single")
      const b = yield* worker("b")
      positions.push(...(yield* append("cat-1", 2)))
      yield* subs.waitUntilCaughtUp("single")
      yield* Fiber.interrupt(a)
      positions.push(...(yield* append("cat-1", 3)))
      yield* subs.waitUntilCaughtUp("single")
      yield* Fiber.interrupt(b)
      assert.deepStrictEqual(
        handledBy.map(([id]) => id),
        [...Array(12).fill("a"), ...Array(3).fill("b")]
      )
      assert.deepStrictEqual(
        handledBy.map(([, position]) => position),
        positions
      )
      const status = yield* subs.status("single")
      assert.strictEqual(status.partitions[0]!.checkpoint.position, positions[14])
      assert.strictEqual(status.partitions[0]!.lagEvents, 0)
    })
  )

  live(
    "lifecycle: Started, CatchingUp, CaughtUp (then live), Stopped, in order; nothing to catch up is caught up",
    () =>
      Effect.gen(function* () {
        const subs = yield* Subscriptions.Subscriptions
        yield* append("cat-1", 25)
        yield* append("dog-1", 3)
        const seen = yield* watchLifecycle(subs)
        const life = yield* subs
          .run("life", () => Effect.void, { categories: ["cat"], batchSize: 10 })
          .pipe(Effect.forkChild)
        yield* until(() => phasesOf(seen, "life").some((phase) => phase._tag === "CaughtUp"))
        // Live: new events are handled without a new phase.
        yield* append("cat-2", 4)
        yield* subs.waitUntilCaughtUp("life")
        assert.deepStrictEqual(
          (yield* subs.phases("life")).map((event) => [event.partition, event.phase._tag]),
          [[0, "CaughtUp"]]
        )
        yield* Fiber.interrupt(life)
        yield* until(() => phasesOf(seen, "life").some((phase) => phase._tag === "Stopped"))
        const phases = phasesOf(seen, "life")
        assert.deepStrictEqual(
          phases.map((phase) => phase._tag),
          ["Started", "CatchingUp", "CaughtUp", "Stopped"]
        )
        assert.deepStrictEqual(phases[1], { _tag: "CatchingUp", behind: 25, done: 0 })
        assert.strictEqual(phases[2]!._tag === "CaughtUp" ? phases[2].events : -1, 25)
        assert.deepStrictEqual(phases[3], { _tag: "Stopped", reason: "interrupted" })
        assert.deepStrictEqual(yield* subs.phases("life"), [])

        // A filter that matches nothing beyond the checkpoint: caught up at once.
        const none = yield* subs.run("none", () => Effect.void, { categories: ["bird"] }).pipe(Effect.forkChild)
        yield* until(() => phasesOf(seen, "none").length >= 2)
        yield* Fiber.interrupt(none)
        assert.deepStrictEqual(phasesOf(seen, "none").slice(0, 2), [
          { _tag: "Started" },
          { _tag: "CaughtUp", events: 0, seconds: 0 }
        ])
      }).pipe(Effect.scoped)
  )

  live("lifecycle: a second worker of a partition stands by, then takes over when the first stops", () =>
    Effect.gen(function* () {
      const subs = yield* Subscriptions.Subscriptions
      yield* append("cat-1", 5)
      const seen = yield* watchLifecycle(subs)
      const a = yield* subs.run("single", () => Effect.void).pipe(Effect.forkChild)
      yield* subs.waitUntilCaughtUp("single")
      const b = yield* subs.run("single", () => Effect.void).pipe(Effect.forkChild)
      const byWorker = () => {
        const workers = new Map<number, Array<string>>()
        for (const event of seen.filter((candidate) => candidate.subscription === "single")) {
          workers.set(event.worker, [...(workers.get(event.worker) ?? []), event.phase._tag])
        }
        return [...workers.values()]
      }
      yield* until(() => byWorker()[1]?.includes("Standby") === true)
      yield* Fiber.interrupt(a)
      const more = yield* append("cat-1", 2)
      yield* until(() => byWorker()[1]?.includes("CaughtUp") === true)
      yield* subs.waitUntilCaughtUp("single")
      yield* Fiber.interrupt(b)
      assert.deepStrictEqual(byWorker()[0], ["Started", "CatchingUp", "CaughtUp", "Stopped"])
      assert.deepStrictEqual(byWorker()[1]!.slice(0, 3), ["Started", "Standby", "TookOver"])
      const standby = seen.find((event) => event.phase._tag === "Standby")!
      assert.isUndefined((standby.phase as { heldByPid: number | undefined }).heldByPid)
      assert.strictEqual((yield* subs.status("single")).partitions[0]!.checkpoint.position, more[1])
    }).pipe(Effect.scoped)
  )
}
