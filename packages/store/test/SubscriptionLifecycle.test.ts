import { assert, describe, it } from "@effect/vitest"
import type * as EventStore from "@evently/store/EventStore"
import * as SubscriptionLifecycle from "@evently/store/SubscriptionLifecycle"
import * as Subscriptions from "@evently/store/Subscriptions"
import * as Clock from "effect/Clock"
import * as DateTime from "effect/DateTime"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as Metric from "effect/Metric"
import * as Stream from "effect/Stream"
import { TestClock } from "effect/testing"

// `count` events at positions from `from`, recorded at `recordedAtMillis` (epoch milliseconds).
const eventsAt = (from: number, count: number, recordedAtMillis: number): Array<EventStore.RecordedEvent> =>
  Array.from({ length: count }, (_, i) => ({
    position: BigInt(from + i),
    transactionId: 0n,
    stream: "cat-1" as EventStore.RecordedEvent["stream"],
    category: "cat",
    streamVersion: from + i,
    eventId: `00000000-0000-0000-0000-${String(from + i).padStart(12, "0")}`,
    type: "Happened",
    schemaVersion: 1,
    data: {},
    metadata: {} as EventStore.RecordedEvent["metadata"],
    recordedAt: DateTime.makeUnsafe(recordedAtMillis)
  }))

const place = (position: number) => ({ transactionId: 0n, position: BigInt(position) })

// Every log line of `effect`, as `level message`.
const logged = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const lines: Array<string> = []
    const logger = Logger.make((options) => {
      lines.push(`${options.logLevel} ${String(options.message)}`)
    })
    const value = yield* Effect.provide(effect, Logger.layer([logger]))
    return { value, lines }
  })

describe("SubscriptionLifecycle", () => {
  it.effect("a standby's takeover, a long catch-up with progress, live with a lag warning: logs, phases, metrics", () =>
    Effect.gen(function* () {
      const lifecycles = yield* SubscriptionLifecycle.make
      const { lines } = yield* logged(
        Effect.gen(function* () {
          const tracker = yield* lifecycles.track("orders", 2, {
            progressInterval: "2 seconds",
            lagThreshold: "10 seconds"
          })
          yield* tracker.signals.leaseWaiting(4242)
          yield* TestClock.adjust("3 seconds")
          yield* tracker.signals.leaseTaken
          yield* tracker.signals.positioned(place(0), 100)
          for (let batch = 0; batch < 10; batch++) {
            yield* TestClock.adjust("1 second")
            yield* tracker.handled(eventsAt(batch * 10 + 1, 10, 0), place(batch * 10 + 10))
          }
          // Live: an event 20 s old is past the threshold, once; a fresh one resets the warning.
          yield* TestClock.adjust("20 seconds")
          yield* tracker.handled(eventsAt(101, 1, 0), place(101))
          yield* tracker.handled(eventsAt(102, 1, 0), place(102))
          const now = yield* Clock.currentTimeMillis
          yield* tracker.handled(eventsAt(103, 1, now), place(103))
          yield* tracker.stopped("interrupted")
        })
      )
      const prefix = "Info Subscription 'orders' partition 2: "
      assert.deepStrictEqual(lines, [
        `${prefix}started`,
        `${prefix}standing by: the partition is held by backend pid 4242`,
        `${prefix}took over after 3s`,
        `${prefix}catching up: 100 events behind`,
        `${prefix}catching up: 20 of 100 events, 10 ev/s, about 8 s left`,
        `${prefix}catching up: 40 of 100 events, 10 ev/s, about 6 s left`,
        `${prefix}catching up: 60 of 100 events, 10 ev/s, about 4 s left`,
        `${prefix}catching up: 80 of 100 events, 10 ev/s, about 2 s left`,
        `${prefix}caught up: 100 events in 10s at 10 ev/s; live`,
        "Warn Subscription 'orders' partition 2: falling behind: the last event it handled is 33s old (threshold 10s)",
        `${prefix}stopped: interrupted`
      ])
      const attributes = { subscription: "orders", partition: "2" }
      assert.strictEqual(
        (yield* Metric.value(Metric.withAttributes(SubscriptionLifecycle.takeovers, attributes))).count,
        1
      )
      assert.strictEqual(
        (yield* Metric.value(Metric.withAttributes(SubscriptionLifecycle.catchUpEvents, attributes))).count,
        100
      )
      assert.strictEqual(
        (yield* Metric.value(
          Metric.withAttributes(SubscriptionLifecycle.phaseGauge, { ...attributes, phase: "CaughtUp" })
        )).value,
        0
      )
      assert.strictEqual(
        (yield* Metric.value(Metric.withAttributes(SubscriptionLifecycle.liveLagSeconds, attributes))).value,
        0
      )
      assert.deepStrictEqual(yield* lifecycles.current(), [])
    })
  )

  it.effect(
    "a read that comes back empty catches up a partition whose last batches held fewer events than counted",
    () =>
      Effect.gen(function* () {
        const lifecycles = yield* SubscriptionLifecycle.make
        const tracker = yield* lifecycles.track("sparse", 0, undefined)
        yield* tracker.signals.positioned(place(0), 10)
        yield* tracker.handled(eventsAt(1, 2, 0), place(2))
        // Between progress reports, the current phase still shows how far the catch-up got.
        assert.deepStrictEqual(
          (yield* lifecycles.current("sparse")).map((event) => event.phase),
          [{ _tag: "CatchingUp", behind: 10, done: 2 }]
        )
        // The reader already found nothing after position 4; the batch up to 4 commits after that.
        yield* tracker.signals.readEmpty(place(4))
        assert.deepStrictEqual(
          (yield* lifecycles.current("sparse")).map((event) => event.phase._tag),
          ["CatchingUp"]
        )
        yield* tracker.handled(eventsAt(3, 2, 0), place(4))
        const [current] = yield* lifecycles.current("sparse")
        assert.deepStrictEqual(current!.phase, { _tag: "CaughtUp", events: 4, seconds: 0 })
      })
  )

  it.effect("lifecycle(name): the current phase of each running partition first, then every change, in order", () =>
    Effect.gen(function* () {
      const lifecycles = yield* SubscriptionLifecycle.make
      const a = yield* lifecycles.track("a", 0, undefined)
      yield* lifecycles.track("b", 0, undefined)
      yield* a.signals.positioned(place(0), 0)
      const service = Subscriptions.lifecycleOf(lifecycles)
      // The snapshot comes after the watcher subscribed: once it has its first event, it misses no change.
      const subscribed = yield* Deferred.make<void>()
      const watched = yield* service.lifecycle("a").pipe(
        Stream.tap(() => Deferred.succeed(subscribed, undefined)),
        Stream.take(3),
        Stream.runCollect,
        Effect.forkChild
      )
      yield* Deferred.await(subscribed)
      yield* a.recovering("connection lost", 1)
      yield* a.stopped("interrupted")
      const events = yield* Fiber.join(watched)
      assert.deepStrictEqual(
        events.map((event) => [event.subscription, event.phase._tag]),
        [
          ["a", "CaughtUp"],
          ["a", "Recovering"],
          ["a", "Stopped"]
        ]
      )
      assert.isTrue(events[0]!.sequence < events[1]!.sequence && events[1]!.sequence < events[2]!.sequence)
      assert.strictEqual((yield* Effect.flip(service.phases(""))).reason, "the name is empty")
    })
  )

  it("refuses a progress interval or lag threshold that is not a positive finite duration", () => {
    assert.include(
      SubscriptionLifecycle.reportingProblem({ progressInterval: "0 millis" }),
      "progressInterval must be a finite duration of at least 1 millisecond"
    )
    assert.include(SubscriptionLifecycle.reportingProblem({ lagThreshold: "soon" as never }), "lagThreshold")
    assert.isUndefined(SubscriptionLifecycle.reportingProblem({ progressInterval: "1 second" }))
  })
})
