import { ClusterRunner, StreamEntity } from "@evently/cluster"
import { EventStore, SnapshotPolicy, Snapshots, StreamName } from "@evently/store"
import { assert, describe, it } from "@effect/vitest"
import * as MessageStorage from "effect/cluster/MessageStorage"
import type * as Sharding from "effect/cluster/Sharding"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { Counter, CounterState, decider, limit, OverLimit } from "./fixtures/Counter.ts"

const Runner = StreamEntity.layer(Counter, { decider }).pipe(
  Layer.provideMerge(ClusterRunner.layerTest),
  Layer.provideMerge(EventStore.layerMemory)
)

describe("StreamEntity on one in-process runner", () => {
  it.live("handles a command on the stream's owner and replies with the events and the state", () =>
    Effect.gen(function* () {
      const counters = yield* StreamEntity.client(Counter)
      const first = yield* counters.handle("counter-1", { _tag: "Add", amount: 2, by: "ann" })
      const second = yield* counters.handle("counter-1", { _tag: "Add", amount: 3, by: "bob" })
      assert.deepStrictEqual(first.events, [{ _tag: "Added", amount: 2, by: "ann" }])
      assert.deepStrictEqual(
        { stream: second.stream, version: second.version, state: second.state, duplicate: second.duplicate },
        { stream: "counter-1", version: 2, state: { total: 5, count: 2 }, duplicate: false }
      )
      assert.isTrue(second.positions.length === 1 && typeof second.positions[0] === "bigint")
      const loaded = yield* counters.load("counter-1")
      assert.deepStrictEqual([loaded.stream, loaded.version, loaded.state], ["counter-1", 2, { total: 5, count: 2 }])
    }).pipe(Effect.provide(Runner))
  )

  it.live("a command id handled before appends nothing and replies with its first handling", () =>
    Effect.gen(function* () {
      const counters = yield* StreamEntity.client(Counter)
      const once = yield* counters.handle("counter-2", { _tag: "Add", amount: 7, by: "ann" }, { commandId: "c-1" })
      const again = yield* counters.handle("counter-2", { _tag: "Add", amount: 7, by: "ann" }, { commandId: "c-1" })
      assert.isFalse(once.duplicate)
      assert.deepStrictEqual([again.version, again.duplicate, again.state], [1, true, { total: 7, count: 1 }])
      const store = yield* EventStore.EventStore
      const stored = yield* Stream.runCollect(store.readStream("counter-2"))
      assert.strictEqual(stored.length, 1)
      assert.strictEqual(stored[0]!.metadata.causationId, "c-1")
    }).pipe(Effect.provide(Runner))
  )

  it.live("the decider's refusal reaches the client as its own typed error, and nothing is written", () =>
    Effect.gen(function* () {
      const counters = yield* StreamEntity.client(Counter)
      const error = yield* Effect.flip(counters.handle("counter-3", { _tag: "Add", amount: limit + 1, by: "ann" }))
      assert.instanceOf(error, OverLimit)
      assert.deepStrictEqual([error.total, error.amount, error.limit], [0, limit + 1, limit])
      const loaded = yield* counters.load("counter-3")
      assert.strictEqual(loaded.version, 0)
    }).pipe(Effect.provide(Runner))
  )

  it.live("an invalid stream name fails before anything is sent", () =>
    Effect.gen(function* () {
      const counters = yield* StreamEntity.client(Counter)
      const error = yield* Effect.flip(counters.handle("no category", { _tag: "Add", amount: 1, by: "ann" }))
      assert.instanceOf(error, StreamName.InvalidStreamName)
    }).pipe(Effect.provide(Runner))
  )

  it.live("a client with no runner owning the stream fails with DeliveryFailed after its timeout", () =>
    Effect.gen(function* () {
      const counters = yield* StreamEntity.client(Counter, { deliveryTimeout: "300 millis" })
      const error = yield* Effect.flip(counters.handle("counter-4", { _tag: "Add", amount: 1, by: "ann" }))
      assert.instanceOf(error, StreamEntity.DeliveryFailed)
      assert.strictEqual(error.stream, "counter-4")
      assert.include(error.reason, "within")
    }).pipe(Effect.provide(ClusterRunner.layerTest))
  )
})

const PersistedCounter = StreamEntity.make("PersistedCounter", { ...Counter.protocol, persisted: true })

const PersistedRunner: Layer.Layer<MessageStorage.MemoryDriver | EventStore.EventStore | Sharding.Sharding> =
  StreamEntity.layer(PersistedCounter, { decider }).pipe(
    Layer.provideMerge(ClusterRunner.layerTest),
    Layer.provideMerge(EventStore.layerMemory)
  )

describe("StreamEntity with persisted commands", () => {
  it.live("stores each command before handling it, and a command id sent twice is appended once", () =>
    Effect.gen(function* () {
      const counters = yield* StreamEntity.client(PersistedCounter)
      const first = yield* counters.handle("counter-9", { _tag: "Add", amount: 4, by: "ann" }, { commandId: "p-1" })
      const again = yield* counters.handle("counter-9", { _tag: "Add", amount: 4, by: "ann" }, { commandId: "p-1" })
      assert.deepStrictEqual([first.version, first.state], [1, { total: 4, count: 1 }])
      assert.deepStrictEqual([again.version, again.state], [1, { total: 4, count: 1 }])
      const store = yield* EventStore.EventStore
      assert.strictEqual((yield* Stream.runCollect(store.readStream("counter-9"))).length, 1)
      const messages = yield* MessageStorage.MemoryDriver
      assert.isAbove(messages.journal.length, 0)
    }).pipe(Effect.provide(PersistedRunner))
  )
})

/** How many Counter entities are resident on the runner, from effect/cluster's gauge. */
const residentCounters = Effect.map(Metric.snapshot, (snapshots) => {
  const series = snapshots.find(
    (snapshot) => snapshot.id === "effect_cluster_entities" && snapshot.attributes?.["type"] === "Counter"
  )
  return series === undefined ? undefined : Number((series.state as { readonly value: bigint }).value)
})

describe("StreamEntity passivation", () => {
  it.live("an idle stream's entity is stopped after maxIdleTime; its next command loads it again", () =>
    Effect.gen(function* () {
      const counters = yield* StreamEntity.client(Counter)
      yield* counters.handle("counter-idle", { _tag: "Add", amount: 1, by: "ann" })
      assert.strictEqual(yield* residentCounters, 1)
      yield* residentCounters.pipe(
        Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (count) => count === 0 }),
        Effect.timeout("10 seconds")
      )
      const next = yield* counters.handle("counter-idle", { _tag: "Add", amount: 2, by: "ann" })
      assert.deepStrictEqual([next.version, next.state], [2, { total: 3, count: 2 }])
      assert.strictEqual(yield* residentCounters, 1)
    }).pipe(
      Effect.provide(
        StreamEntity.layer(Counter, { decider, maxIdleTime: "200 millis" }).pipe(
          Layer.provideMerge(ClusterRunner.layerTest),
          Layer.provideMerge(EventStore.layerMemory)
        )
      )
    )
  )
})

describe("StreamEntity with snapshots", () => {
  it.live("the owner loads a stream from its newest snapshot when one is configured", () =>
    Effect.gen(function* () {
      const counters = yield* StreamEntity.client(Counter)
      for (const amount of [1, 2, 3, 4]) yield* counters.handle("counter-s", { _tag: "Add", amount, by: "ann" })
      const loaded = yield* counters.load("counter-s")
      assert.deepStrictEqual([loaded.version, loaded.state, loaded.snapshotVersion], [4, { total: 10, count: 4 }, 4])
      assert.strictEqual(loaded.eventsRead, 0)
    }).pipe(
      Effect.provide(
        StreamEntity.layer(Counter, {
          decider,
          cache: false,
          snapshot: { schema: CounterState, policy: SnapshotPolicy.every(2) }
        }).pipe(
          Layer.provideMerge(ClusterRunner.layerTest),
          Layer.provideMerge(Snapshots.layerMemory),
          Layer.provideMerge(EventStore.layerMemory)
        )
      )
    )
  )
})
