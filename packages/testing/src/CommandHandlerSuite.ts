/**
 * The behavioural suite of `CommandHandler` on an event store and a snapshot store: concurrency without lost updates
 * (turns per stream by default, racing when opted out), retries and their exhaustion, refusals that write nothing,
 * idempotent command ids, snapshots (bounded reads, same state as folding from scratch, undecodable ones ignored) and
 * metadata. Run it against every pair of layers.
 *
 * @since 0.1.0
 */
import { assert, layer } from "@effect/vitest"
import { Accumulate, Arbitraries, Machine, Rule } from "@evently/machine"
import {
  CommandHandler,
  Correlation,
  EventCodec,
  EventStore,
  RetryPolicy,
  SnapshotPolicy,
  Snapshots,
  type StreamName
} from "@evently/store"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Conflicts from "./Conflicts.ts"

/** Names Postgres can store (no NUL character), which generated histories respect. */
const Name = Schema.String.check(Schema.isPattern(/^[a-z0-9 -]{0,16}$/))

const CartEvent = Schema.TaggedUnion({
  Opened: { owner: Name },
  ItemAdded: { item: Name },
  Closed: {}
})
type CartEvent = typeof CartEvent.Type

/**
 * The suite's machine: a cart is opened, takes items, and is closed (after which nothing may follow).
 *
 * @since 0.1.0
 * @category fixtures
 */
export const CartMachine = Machine.withData(
  Machine.make(CartEvent, {
    Opened: { follows: Rule.nothing() },
    ItemAdded: { follows: Rule.event("Opened"), accumulate: Accumulate.keep() },
    Closed: { follows: Rule.event("Opened") }
  }),
  {
    initial: { items: [] as ReadonlyArray<string> },
    evolve: (data, event: CartEvent) => (event._tag === "ItemAdded" ? { items: [...data.items, event.item] } : data)
  }
)

type CartState = Machine.StateOf<typeof CartMachine>

/**
 * The cart state as JSON, for snapshots.
 *
 * @since 0.1.0
 * @category fixtures
 */
export const CartStateSchema = Schema.Struct({
  tags: Schema.Array(Schema.Literals(["Opened", "ItemAdded", "Closed"])),
  revision: Schema.Number,
  eventCount: Schema.Number,
  data: Schema.Struct({ items: Schema.Array(Schema.String) })
})

class AlreadyInCart extends Schema.TaggedError<AlreadyInCart>()("AlreadyInCart", { item: Schema.String }) {}

type CartCommand =
  | { readonly _tag: "Open"; readonly owner: string }
  | { readonly _tag: "Add"; readonly items: ReadonlyArray<string> }
  | { readonly _tag: "Close" }

/** Adding an item already there is refused; adding after closing is the machine's to refuse (a "buggy" decide). */
const decide = (command: CartCommand, state: CartState): Result.Result<ReadonlyArray<CartEvent>, AlreadyInCart> => {
  switch (command._tag) {
    case "Open":
      return Result.succeed([CartEvent.cases.Opened.make({ owner: command.owner })])
    case "Add": {
      const present = command.items.find((item) => state.data.items.includes(item))
      return present === undefined
        ? Result.succeed(command.items.map((item) => CartEvent.cases.ItemAdded.make({ item })))
        : Result.fail(new AlreadyInCart({ item: present }))
    }
    case "Close":
      return Result.succeed([CartEvent.cases.Closed.make({})])
  }
}

const decider = Machine.decider(CartMachine, decide)
const codec = EventCodec.make(CartEvent)

const unique = () => crypto.randomUUID().replaceAll("-", "").slice(0, 12)

/** The store in context with its `readStream` counting the events it delivers. */
const counting = Effect.gen(function* () {
  const store = yield* EventStore.EventStore
  const counter = { reads: 0 }
  const wrapped = EventStore.EventStore.of({
    ...store,
    readStream: (stream, options) =>
      store.readStream(stream, options).pipe(Stream.tap(() => Effect.sync(() => counter.reads++)))
  })
  return { counter, wrapped }
})

/**
 * The store in context with its appends recorded (events per call) and the `hold`-th append (1-based) held until
 * `release` completes; `held` completes when that append is reached.
 */
const holdingAppend = (hold: number, base?: EventStore.EventStore["Service"]) =>
  Effect.gen(function* () {
    const store = base ?? (yield* EventStore.EventStore)
    const held = yield* Deferred.make<void>()
    const release = yield* Deferred.make<void>()
    const appends: Array<number> = []
    const wrapped = EventStore.EventStore.of({
      ...store,
      append: (stream, events, options) =>
        Effect.suspend(() => {
          appends.push(events.length)
          return appends.length === hold
            ? Deferred.succeed(held, undefined).pipe(Effect.andThen(Deferred.await(release)))
            : Effect.void
        }).pipe(Effect.andThen(store.append(stream, events, options)))
    })
    return { appends, held, release, wrapped }
  })

/** A command's outcome without its positions (which differ between streams): what handling it alone would give. */
const outcomeOf = (outcome: Result.Result<CommandHandler.Handled<CartEvent, CartState>, unknown>): unknown =>
  Result.isSuccess(outcome)
    ? {
        version: outcome.success.version,
        events: outcome.success.events,
        state: outcome.success.state,
        duplicate: outcome.success.duplicate
      }
    : (outcome.failure as { readonly _tag?: string })._tag

/** Collects warning messages logged by `effect`. */
const withWarnings = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const warnings: Array<string> = []
    const logger = Logger.make((options) => {
      if (options.logLevel === "Warn") warnings.push(String(options.message))
    })
    const value = yield* Effect.provide(effect, Logger.layer([logger]))
    return { value, warnings }
  })

const cartHandler = CommandHandler.make({ decider, codec })
// Commands that race instead of taking turns per stream: what the tests of conflicts between them need.
const racingCarts = CommandHandler.make({ decider, codec, oneAtATimePerStream: false })
// Without the state cache, every load goes to the store (and to the snapshots): what the tests of loading count.
const uncachedCarts = CommandHandler.make({ decider, codec, cache: false })
const snapshotting = (every: number) =>
  CommandHandler.make({
    decider,
    codec,
    snapshot: { schema: CartStateSchema, policy: SnapshotPolicy.every(every) },
    cache: false
  })

/**
 * Registers the suite against a layer that provides an event store and a snapshot store (built once per suite; each
 * test uses streams of its own).
 *
 * @since 0.1.0
 * @category suites
 */
export const suite = <E>(
  storesName: string,
  stores: Layer.Layer<EventStore.EventStore | Snapshots.Snapshots, E>
): void =>
  layer(stores, { excludeTestServices: true, timeout: "120 seconds" })(`CommandHandler on ${storesName}`, (it) => {
    it.effect("racing, 32 concurrent commands on one stream all succeed: no lost update, no duplicate", () =>
      Effect.gen(function* () {
        const carts = yield* racingCarts
        const stream = `cart-${unique()}`
        yield* carts.handle(stream, { _tag: "Open", owner: "ann" })
        const items = Array.from({ length: 32 }, (_, i) => `item-${i}`)
        const results = yield* Effect.forEach(items, (item) => carts.handle(stream, { _tag: "Add", items: [item] }), {
          concurrency: "unbounded"
        }).pipe(
          Effect.provide(
            RetryPolicy.layer(Schedule.spaced("3 millis").pipe(Schedule.jittered, Schedule.upTo({ times: 200 })))
          )
        )
        const loaded = yield* carts.load(stream)
        assert.strictEqual(loaded.version, 33)
        assert.deepStrictEqual([...loaded.state.data.items].sort(), [...items].sort())
        assert.deepStrictEqual(
          results.map((r) => r.version).sort((a, b) => a - b),
          Array.from({ length: 32 }, (_, i) => i + 2)
        )
      })
    )

    it.effect("by default, 32 concurrent commands on one stream take turns: no conflict, none given up", () =>
      Effect.gen(function* () {
        const carts = yield* cartHandler
        const stream = `cart-${unique()}`
        yield* carts.handle(stream, { _tag: "Open", owner: "ann" })
        const items = Array.from({ length: 32 }, (_, i) => `item-${i}`)
        // With no retry at all, a single conflict would give a command up.
        const outcomes = yield* Effect.forEach(
          items,
          (item) => Effect.result(carts.handle(stream, { _tag: "Add", items: [item] })),
          { concurrency: "unbounded" }
        ).pipe(Effect.provide(RetryPolicy.layerNoRetry))
        assert.deepStrictEqual(
          outcomes.map((outcome) => (Result.isSuccess(outcome) ? outcome.success.attempts : outcome.failure)),
          items.map(() => 1)
        )
        // Every command applied once: the fold of the stored events from scratch holds each item once.
        const fromScratch = yield* Effect.flatMap(uncachedCarts, (uncached) => uncached.load(stream))
        assert.strictEqual(fromScratch.version, 33)
        assert.deepStrictEqual([...fromScratch.state.data.items].sort(), [...items].sort())
        assert.deepStrictEqual(fromScratch.state, (yield* carts.load(stream)).state)
      })
    )

    it.effect(
      "with no retries, racing commands fail with the typed exhaustion error and only the winner is stored",
      () =>
        Effect.gen(function* () {
          const { wrapped } = yield* counting
          // Every append waits until all 32 commands have read the stream, so exactly one of them wins.
          let loadsDone = 0
          const racing = EventStore.EventStore.of({
            ...wrapped,
            readStream: (stream, options) =>
              wrapped.readStream(stream, options).pipe(Stream.onEnd(Effect.sync(() => loadsDone++))),
            append: (stream, events, options) =>
              Effect.andThen(
                Effect.repeat(Effect.yieldNow, { until: () => loadsDone >= 32 }),
                wrapped.append(stream, events, options)
              )
          })
          const carts = yield* Effect.provideService(racingCarts, EventStore.EventStore, racing)
          const stream = `cart-${unique()}`
          yield* wrapped.append(stream, [{ type: "Opened", data: { owner: "ann" } }])
          const outcomes = yield* Effect.forEach(
            Array.from({ length: 32 }, (_, i) => `item-${i}`),
            (item) => Effect.result(carts.handle(stream, { _tag: "Add", items: [item] })),
            { concurrency: "unbounded" }
          ).pipe(Effect.provide(RetryPolicy.layerNoRetry))
          const won = outcomes.filter(Result.isSuccess).map((r) => r.success.events[0]!)
          const lost = outcomes.filter(Result.isFailure).map((r) => r.failure)
          assert.strictEqual(won.length, 1)
          assert.strictEqual(lost.length, 31)
          for (const error of lost) {
            assert.instanceOf(error, CommandHandler.ConcurrencyRetriesExhausted)
            if (error instanceof CommandHandler.ConcurrencyRetriesExhausted) {
              assert.strictEqual(error.attempts, 1)
              assert.strictEqual(error.stream, stream)
            }
          }
          const loaded = yield* carts.load(stream)
          assert.deepStrictEqual(
            loaded.state.data.items,
            won.map((event) => (event._tag === "ItemAdded" ? event.item : ""))
          )
          assert.strictEqual(loaded.version, 2)
        })
    )

    it.effect("a retry after a conflict reads only the events appended since its first load", () =>
      Effect.gen(function* () {
        const { counter, wrapped } = yield* counting
        const stream = `cart-${unique()}`
        const carts = yield* Effect.provideService(uncachedCarts, EventStore.EventStore, wrapped)
        yield* carts.handle(stream, { _tag: "Open", owner: "ann" })
        yield* Effect.forEach(
          Array.from({ length: 20 }, (_, i) => `old-${i}`),
          (item) => carts.handle(stream, { _tag: "Add", items: [item] })
        )
        // The first append of the command meets a stream that a rival extended by 3 events after the load.
        let rivalDone = false
        const racing = EventStore.EventStore.of({
          ...wrapped,
          append: (name, events, options) =>
            rivalDone
              ? wrapped.append(name, events, options)
              : Effect.andThen(
                  Effect.suspend(() => {
                    rivalDone = true
                    return Effect.orDie(
                      Effect.forEach(["r1", "r2", "r3"], (item) => carts.handle(stream, { _tag: "Add", items: [item] }))
                    )
                  }),
                  wrapped.append(name, events, options)
                )
        })
        const racer = yield* Effect.provideService(uncachedCarts, EventStore.EventStore, racing)
        const readsBefore = counter.reads
        const rivalReads = 3 * 21 + (1 + 2) // each rival command loads the stream as it then is (21, 22, 23 events)
        const handled = yield* racer.handle(stream, { _tag: "Add", items: ["mine"] })
        assert.strictEqual(handled.attempts, 2)
        assert.strictEqual(handled.version, 25)
        assert.include(handled.state.data.items, "mine")
        // First load: 21 events; the retry: only the rival's 3 (a reload from scratch would read 24).
        assert.strictEqual(counter.reads - readsBefore - rivalReads, 21 + 3)
      })
    )

    it.effect("a handler reads only what other writers appended since the state it last knew", () =>
      Effect.gen(function* () {
        const { counter, wrapped } = yield* counting
        const stream = `cart-${unique()}`
        const carts = yield* Effect.provideService(cartHandler, EventStore.EventStore, wrapped)
        const other = yield* Effect.provideService(uncachedCarts, EventStore.EventStore, wrapped)
        yield* carts.handle(stream, { _tag: "Open", owner: "ann" })
        yield* Effect.forEach(
          Array.from({ length: 30 }, (_, i) => `old-${i}`),
          (item) => carts.handle(stream, { _tag: "Add", items: [item] })
        )
        // Another handler (another process, say) appends two events the cached state does not know.
        yield* other.handle(stream, { _tag: "Add", items: ["theirs-1"] })
        yield* other.handle(stream, { _tag: "Add", items: ["theirs-2"] })
        const before = counter.reads
        const handled = yield* carts.handle(stream, { _tag: "Add", items: ["mine"] })
        // The last event it knew (read again to check it is still there), then the two it did not.
        assert.strictEqual(counter.reads - before, 1 + 2)
        assert.strictEqual(handled.attempts, 1)
        assert.strictEqual(handled.version, 34)
        assert.deepStrictEqual(handled.state.data.items.slice(-3), ["theirs-1", "theirs-2", "mine"])
        // What the cache built is what a fold from scratch gives.
        const scratch = yield* other.load(stream)
        assert.deepStrictEqual(scratch.state, handled.state)
        assert.strictEqual(scratch.eventsRead, 34)
      })
    )

    it.effect(
      "a cached state the store does not hold (an append rolled back with its transaction) is not trusted",
      () =>
        Effect.gen(function* () {
          const store = yield* EventStore.EventStore
          // While armed, an append reports success and writes nothing: what a caller's rolled-back transaction leaves.
          let armed = false
          const phantom = EventStore.EventStore.of({
            ...store,
            append: (name, events, options) =>
              armed
                ? Effect.succeed({ stream: name as StreamName.StreamName, version: 2, positions: [0n] })
                : store.append(name, events, options)
          })
          const carts = yield* Effect.provideService(cartHandler, EventStore.EventStore, phantom)
          const stream = `cart-${unique()}`
          yield* carts.handle(stream, { _tag: "Open", owner: "ann" })
          armed = true
          const ghost = yield* carts.handle(stream, { _tag: "Add", items: ["ghost"] })
          assert.strictEqual(ghost.version, 2)
          armed = false
          const real = yield* carts
            .handle(stream, { _tag: "Add", items: ["real"] })
            .pipe(Effect.provide(RetryPolicy.layerNoRetry))
          assert.strictEqual(real.version, 2)
          assert.deepStrictEqual(real.state.data.items, ["real"])
        })
    )

    it.effect("a command that keeps finding the stream changed gives up after the policy's attempts, naming them", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const stream = `cart-${unique()}`
        // Another writer gets in before every append.
        const contended = EventStore.EventStore.of({
          ...store,
          append: (s, events, options) =>
            Effect.andThen(
              store.append(s, [{ type: "ItemAdded", data: { item: `rival-${unique().slice(0, 8)}` } }]),
              store.append(s, events, options)
            )
        })
        const carts = yield* Effect.provideService(cartHandler, EventStore.EventStore, contended)
        yield* store.append(stream, [{ type: "Opened", data: { owner: "ann" } }])
        const error = yield* Effect.flip(carts.handle(stream, { _tag: "Add", items: ["mine"] })).pipe(
          Effect.provide(RetryPolicy.layer(Schedule.recurs(2)))
        )
        assert.instanceOf(error, CommandHandler.ConcurrencyRetriesExhausted)
        assert.include(error.message, `Stream '${stream}'`)
        assert.include(error.message, "3 attempts")
        const loaded = yield* carts.load(stream)
        assert.strictEqual(loaded.version, 4)
        assert.notInclude(loaded.state.data.items, "mine")
      })
    )

    it.effect(
      "racing, 8 concurrent commands that read the same version conflict (Conflicts.rendezvous): 7 retry, none lost",
      () =>
        Effect.gen(function* () {
          const store = yield* EventStore.EventStore
          const stream = `cart-${unique()}`
          yield* store.append(stream, [{ type: "Opened", data: { owner: "ann" } }])
          const { carts, conflicts } = yield* Effect.all({ carts: racingCarts, conflicts: Conflicts.Conflicts }).pipe(
            Effect.provide(Conflicts.layer({ rendezvous: 8 }))
          )
          const items = Array.from({ length: 8 }, (_, i) => `item-${i}`)
          const results = yield* Effect.forEach(items, (item) => carts.handle(stream, { _tag: "Add", items: [item] }), {
            concurrency: "unbounded"
          }).pipe(Effect.provide(RetryPolicy.layer(Schedule.recurs(20))))
          const attempts = results.map((r) => r.attempts)
          assert.strictEqual(attempts.filter((n) => n === 1).length, 1)
          assert.isTrue(attempts.every((n) => n >= 1) && attempts.filter((n) => n >= 2).length === 7)
          assert.isAtLeast(yield* conflicts.appends, 8 + 7)
          const loaded = yield* carts.load(stream)
          assert.strictEqual(loaded.version, 9)
          assert.deepStrictEqual([...loaded.state.data.items].sort(), items)
        })
    )

    it.effect("a rival writing before each of the first appends (Conflicts.rival): the retry folds its events in", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const stream = `cart-${unique()}`
        yield* store.append(stream, [{ type: "Opened", data: { owner: "ann" } }])
        let rivals = 0
        const { carts, conflicts } = yield* Effect.all({ carts: cartHandler, conflicts: Conflicts.Conflicts }).pipe(
          Effect.provide(
            Conflicts.layer({
              conflicts: 2,
              rival: () => [{ type: "ItemAdded", data: { item: `rival-${++rivals}` } }]
            })
          )
        )
        const handled = yield* carts
          .handle(stream, { _tag: "Add", items: ["mine"] })
          .pipe(Effect.provide(RetryPolicy.layer(Schedule.recurs(5))))
        assert.strictEqual(handled.attempts, 3)
        assert.strictEqual(yield* conflicts.injected, 2)
        assert.strictEqual(handled.version, 4)
        assert.deepStrictEqual(handled.state.data.items, ["rival-1", "rival-2", "mine"])
      })
    )

    it.effect(
      "injected conflicts beyond the policy (Conflicts.conflicts): the typed exhaustion error, nothing written",
      () =>
        Effect.gen(function* () {
          const store = yield* EventStore.EventStore
          const stream = `cart-${unique()}`
          yield* store.append(stream, [{ type: "Opened", data: { owner: "ann" } }])
          const carts = yield* Effect.provide(cartHandler, Conflicts.layer({ conflicts: 3 }))
          const error = yield* Effect.flip(carts.handle(stream, { _tag: "Add", items: ["mine"] })).pipe(
            Effect.provide(RetryPolicy.layer(Schedule.recurs(2)))
          )
          assert.instanceOf(error, CommandHandler.ConcurrencyRetriesExhausted)
          assert.include(error.message, "3 attempts")
          assert.strictEqual(yield* store.streamVersion(stream), 1)
          const after = yield* carts.handle(stream, { _tag: "Add", items: ["mine"] })
          assert.strictEqual(after.attempts, 1)
          assert.strictEqual(after.version, 2)
        })
    )

    it.effect("a refusal by the decider, or by the machine for an illegal event, writes nothing", () =>
      Effect.gen(function* () {
        const carts = yield* cartHandler
        const store = yield* EventStore.EventStore
        const stream = `cart-${unique()}`
        yield* carts.handle(stream, { _tag: "Open", owner: "ann" })
        yield* carts.handle(stream, { _tag: "Add", items: ["pen"] })
        const refused = yield* Effect.flip(carts.handle(stream, { _tag: "Add", items: ["cup", "pen"] }))
        assert.instanceOf(refused, AlreadyInCart)
        assert.strictEqual(yield* store.streamVersion(stream), 2)
        yield* carts.handle(stream, { _tag: "Close" })
        // The decide above does not check that the cart is open: the machine refuses the event.
        const illegal = yield* Effect.flip(carts.handle(stream, { _tag: "Add", items: ["late"] }))
        assert.instanceOf(illegal, Machine.IllegalTransition)
        assert.strictEqual(illegal.message, "Event type 'ItemAdded' may not follow [Closed]")
        assert.strictEqual(yield* store.streamVersion(stream), 3)
      })
    )

    it.effect("the same command id twice appends once and returns the first result", () =>
      Effect.gen(function* () {
        const carts = yield* snapshotting(3)
        const store = yield* EventStore.EventStore
        const stream = `cart-${unique()}`
        yield* carts.handle(stream, { _tag: "Open", owner: "ann" })
        const commandId = crypto.randomUUID()
        const first = yield* carts.handle(stream, { _tag: "Add", items: ["pen", "ink"] }, { commandId })
        const again = yield* carts.handle(stream, { _tag: "Add", items: ["pen", "ink"] }, { commandId })
        assert.isFalse(first.duplicate)
        assert.isTrue(again.duplicate)
        assert.deepStrictEqual(
          [again.version, again.events, again.positions, again.state],
          [first.version, first.events, first.positions, first.state]
        )
        assert.strictEqual(yield* store.streamVersion(stream), 3)
        // Later commands move the snapshot past the first handling: it is still recognised.
        yield* carts.handle(stream, { _tag: "Add", items: ["cap", "nib", "pad"] })
        const late = yield* carts.handle(stream, { _tag: "Add", items: ["pen", "ink"] }, { commandId })
        assert.isTrue(late.duplicate)
        assert.deepStrictEqual([late.version, late.state], [first.version, first.state])
        assert.strictEqual(yield* store.streamVersion(stream), 6)
        // The event ids are derived from the stream, the command id and the index.
        const ids = yield* Stream.runCollect(store.readStream(stream, { from: 2, limit: 2 }))
        assert.deepStrictEqual(
          [...ids].map((e) => e.eventId),
          [CommandHandler.eventId(stream, commandId, 0), CommandHandler.eventId(stream, commandId, 1)]
        )
      })
    )

    it.effect("with snapshots every 10 events, a 1,000-event stream loads reading fewer than 10 events", () =>
      Effect.gen(function* () {
        const { counter, wrapped } = yield* counting
        const withSnapshots = yield* Effect.provideService(snapshotting(10), EventStore.EventStore, wrapped)
        const fromScratch = yield* cartHandler
        const stream = `cart-${unique()}`
        yield* withSnapshots.handle(stream, { _tag: "Open", owner: "ann" })
        let version = 1
        let n = 0
        while (version < 1000) {
          const size = Math.min(7, 1000 - version)
          const items = Array.from({ length: size }, () => `item-${n++}`)
          version = (yield* withSnapshots.handle(stream, { _tag: "Add", items })).version
        }
        counter.reads = 0
        const loaded = yield* withSnapshots.load(stream)
        assert.strictEqual(loaded.version, 1000)
        assert.isAbove(loaded.snapshotVersion, 990)
        assert.isAtMost(counter.reads, 10)
        assert.strictEqual(counter.reads, loaded.eventsRead)
        const scratch = yield* fromScratch.load(stream)
        assert.strictEqual(scratch.eventsRead, 1000)
        assert.deepStrictEqual(loaded.state, scratch.state)
      })
    )

    it.effect.prop(
      "state loaded from snapshots equals the state folded from scratch, for generated histories",
      {
        history: Arbitraries.validHistory(CartMachine, { maxLength: 14 }),
        chunk: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 4 }))
      },
      ({ history, chunk }) =>
        Effect.gen(function* () {
          // The machine itself is a decider whose command is the list of proposed events.
          const raw = yield* CommandHandler.make({
            decider: CartMachine,
            codec,
            snapshot: { schema: CartStateSchema, policy: SnapshotPolicy.every(3) }
          })
          const stream = `cart-${unique()}`
          for (let i = 0; i < history.length; i += chunk) {
            yield* raw.handle(stream, history.slice(i, i + chunk))
          }
          const loaded = yield* raw.load(stream)
          assert.deepStrictEqual(loaded.state, CartMachine.replay(history))
          assert.strictEqual(loaded.version, history.length)
          assert.isBelow(loaded.eventsRead, 3 + chunk)
        }),
      { timeout: 60_000, arbitrary: { runs: 25 } }
    )

    it.effect("a snapshot that no longer decodes is ignored with a warning and the state rebuilt from events", () =>
      Effect.gen(function* () {
        const carts = yield* snapshotting(2)
        const snapshots = yield* Snapshots.Snapshots
        const stream = `cart-${unique()}`
        yield* carts.handle(stream, { _tag: "Open", owner: "ann" })
        yield* carts.handle(stream, { _tag: "Add", items: ["pen", "ink"] })
        const good = yield* carts.load(stream)
        assert.strictEqual(good.snapshotVersion, 3)
        yield* snapshots.save({ stream, version: 4, schemaVersion: 1, state: { items: "not the old shape" } })
        const { value: rebuilt, warnings } = yield* withWarnings(carts.load(stream))
        assert.strictEqual(rebuilt.snapshotVersion, 0)
        assert.deepStrictEqual(rebuilt.state, good.state)
        assert.strictEqual(warnings.length, 1)
        assert.include(warnings[0], "does not decode")
        // A snapshot written under another schema version is ignored too, and commands go on.
        yield* snapshots.save({ stream, version: 5, schemaVersion: 7, state: good.state })
        const { value: handled, warnings: more } = yield* withWarnings(
          carts.handle(stream, { _tag: "Add", items: ["cap"] })
        )
        assert.deepStrictEqual(handled.state.data.items, ["pen", "ink", "cap"])
        assert.include(more[0], "schema version 7")
      })
    )

    it.effect("a snapshot that cannot be saved is logged and the command succeeds", () =>
      Effect.gen(function* () {
        const broken = Snapshots.Snapshots.of({
          load: () => Effect.fail(new EventStore.StoreError({ operation: "snapshot load", cause: new Error("down") })),
          save: () => Effect.fail(new EventStore.StoreError({ operation: "snapshot save", cause: new Error("down") }))
        })
        const carts = yield* Effect.provideService(snapshotting(1), Snapshots.Snapshots, broken)
        const stream = `cart-${unique()}`
        const { value, warnings } = yield* withWarnings(carts.handle(stream, { _tag: "Open", owner: "ann" }))
        assert.strictEqual(value.version, 1)
        assert.isTrue(warnings.some((w) => w.includes("could not be loaded")))
        assert.isTrue(warnings.some((w) => w.includes("was not saved")))
      })
    )

    it.effect(
      "commands queued for a stream's turn are handled as one group: one append, each its own outcome as if alone",
      () =>
        Effect.gen(function* () {
          const { appends, held, release, wrapped } = yield* holdingAppend(2)
          const carts = yield* Effect.provideService(cartHandler, EventStore.EventStore, wrapped)
          const store = yield* EventStore.EventStore
          const stream = `cart-${unique()}`
          yield* carts.handle(stream, { _tag: "Open", owner: "ann" })
          // The second append holds the stream's turn while the commands below queue for it.
          const first = yield* Effect.forkChild(carts.handle(stream, { _tag: "Add", items: ["a0"] }))
          yield* Deferred.await(held)
          const commands: ReadonlyArray<readonly [CartCommand, CommandHandler.HandleOptions]> = [
            [{ _tag: "Add", items: ["b1", "b2"] }, { commandId: "c-1" }],
            [
              { _tag: "Add", items: ["b3"] },
              { commandId: "c-2", headers: { user: "bo" } }
            ],
            // Refused: an earlier command of the group added b1.
            [{ _tag: "Add", items: ["b1"] }, { commandId: "c-3" }],
            // The id of the group's first command again: its first handling, appended once.
            [{ _tag: "Add", items: ["b9"] }, { commandId: "c-1" }],
            [{ _tag: "Close" }, { commandId: "c-5" }],
            // The machine refuses an item after Closed.
            [{ _tag: "Add", items: ["b4"] }, { commandId: "c-6" }]
          ]
          const queued = yield* Effect.forEach(commands, ([command, options]) =>
            Effect.forkChild(Effect.result(carts.handle(stream, command, options)), { startImmediately: true })
          )
          yield* Deferred.succeed(release, undefined)
          yield* Fiber.join(first)
          const outcomes = yield* Fiber.joinAll(queued)
          // Open, a0, then one append of the group's five events.
          assert.deepStrictEqual(appends, [1, 1, 4])

          // The same commands one at a time on another stream give the same outcomes.
          const alone = `cart-${unique()}`
          yield* carts.handle(alone, { _tag: "Open", owner: "ann" })
          yield* carts.handle(alone, { _tag: "Add", items: ["a0"] })
          const oneByOne: Array<Result.Result<CommandHandler.Handled<CartEvent, CartState>, unknown>> = []
          for (const [command, options] of commands) {
            oneByOne.push(yield* Effect.result(carts.handle(alone, command, options)))
          }
          assert.deepStrictEqual(outcomes.map(outcomeOf), oneByOne.map(outcomeOf))
          assert.strictEqual(outcomeOf(outcomes[2]!), "AlreadyInCart")
          assert.deepStrictEqual(outcomeOf(outcomes[3]!), {
            ...(outcomeOf(outcomes[0]!) as object),
            duplicate: true
          })
          assert.strictEqual(outcomeOf(outcomes[5]!), "IllegalTransition")

          // Each command's events carry its own ids and headers, and its positions are theirs.
          const stored = [...(yield* Stream.runCollect(store.readStream(stream)))]
          assert.strictEqual(stored.length, 6)
          assert.deepStrictEqual(
            stored.slice(2).map((event) => [event.metadata.causationId, event.metadata.headers]),
            [
              ["c-1", undefined],
              ["c-1", undefined],
              ["c-2", { user: "bo" }],
              ["c-5", undefined]
            ]
          )
          const [c1, c2, , again, close] = outcomes.map((outcome) =>
            Result.getOrThrow(Result.orElse(outcome, () => Result.succeed(undefined)))
          )
          assert.deepStrictEqual(c1!.positions, [stored[2]!.position, stored[3]!.position])
          assert.deepStrictEqual(again!.positions, c1!.positions)
          assert.deepStrictEqual(c2!.positions, [stored[4]!.position])
          assert.deepStrictEqual([close!.version, close!.positions], [6, [stored[5]!.position]])
          assert.deepStrictEqual(stored[3]!.eventId, CommandHandler.eventId(stream, "c-1", 1))
        })
    )

    it.effect(
      "in a group, a command the store rejects or whose decide throws fails alone; the others are appended",
      () =>
        Effect.gen(function* () {
          const store = yield* EventStore.EventStore
          // A store that refuses any event adding "b-bad", as it refuses data it cannot store.
          const refusing = EventStore.EventStore.of({
            ...store,
            append: (stream, events, options) => {
              const index = events.findIndex((event) => (event.data as { item?: string }).item === "b-bad")
              return index < 0
                ? store.append(stream, events, options)
                : Effect.fail(new EventStore.InvalidEvent({ stream, index, type: "ItemAdded", reason: "refused" }))
            }
          })
          const { appends, held, release, wrapped } = yield* holdingAppend(2, refusing)
          const carts = yield* Effect.provideService(cartHandler, EventStore.EventStore, wrapped)
          const stream = `cart-${unique()}`
          yield* carts.handle(stream, { _tag: "Open", owner: "ann" })
          const first = yield* Effect.forkChild(carts.handle(stream, { _tag: "Add", items: ["a0"] }))
          yield* Deferred.await(held)
          // "BAD ITEM" does not match the events' Schema: the decide's `make` throws (a defect of that command).
          const items = ["b1", "b-bad", "BAD ITEM", "b2"]
          const queued = yield* Effect.forEach(items, (item) =>
            Effect.forkChild(Effect.exit(carts.handle(stream, { _tag: "Add", items: [item] })), {
              startImmediately: true
            })
          )
          yield* Deferred.succeed(release, undefined)
          yield* Fiber.join(first)
          const exits = yield* Fiber.joinAll(queued)
          assert.deepStrictEqual(
            exits.map((exit) =>
              Exit.isSuccess(exit)
                ? exit.value.version
                : Cause.hasDies(exit.cause)
                  ? "died"
                  : Option.getOrThrow(Cause.findErrorOption(exit.cause))._tag
            ),
            [3, "InvalidEvent", "died", 4]
          )
          const loaded = yield* Effect.flatMap(uncachedCarts, (uncached) => uncached.load(stream))
          assert.deepStrictEqual(loaded.state.data.items, ["a0", "b1", "b2"])
          assert.strictEqual(yield* store.streamVersion(stream), 4)
          // The group tried once with three commands' events (the throwing one had none); then each command alone.
          assert.deepStrictEqual(appends, [1, 1, 3, 1, 1, 1])
        })
    )

    it.effect("a command whose caller is interrupted while it waits for the turn is not applied; the others are", () =>
      Effect.gen(function* () {
        const { held, release, wrapped } = yield* holdingAppend(2)
        const carts = yield* Effect.provideService(cartHandler, EventStore.EventStore, wrapped)
        const stream = `cart-${unique()}`
        yield* carts.handle(stream, { _tag: "Open", owner: "ann" })
        const first = yield* Effect.forkChild(carts.handle(stream, { _tag: "Add", items: ["a0"] }))
        yield* Deferred.await(held)
        const queued = yield* Effect.forEach(["b1", "b2", "b3"], (item) =>
          Effect.forkChild(carts.handle(stream, { _tag: "Add", items: [item] }), { startImmediately: true })
        )
        yield* Fiber.interrupt(queued[1]!)
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(first)
        const [b1, b3] = yield* Fiber.joinAll([queued[0]!, queued[2]!])
        assert.deepStrictEqual([b1!.version, b3!.version], [3, 4])
        const loaded = yield* Effect.flatMap(uncachedCarts, (uncached) => uncached.load(stream))
        assert.deepStrictEqual(loaded.state.data.items, ["a0", "b1", "b3"])
      })
    )

    it.effect("every event carries the command id as causation and the caller's correlation id", () =>
      Effect.gen(function* () {
        const carts = yield* cartHandler
        const store = yield* EventStore.EventStore
        const stream = `cart-${unique()}`
        const opened = yield* carts.handle(stream, { _tag: "Open", owner: "ann" }, { commandId: "cmd-open" })
        const correlationId = crypto.randomUUID()
        yield* Correlation.withId(
          carts.handle(
            stream,
            { _tag: "Add", items: ["pen", "ink"] },
            { commandId: "cmd-add", headers: { user: "ann" } }
          ),
          correlationId
        )
        yield* carts.handle(stream, { _tag: "Close" }).pipe(Correlation.withId(correlationId))
        const events = [...(yield* Stream.runCollect(store.readStream(stream)))]
        assert.deepStrictEqual(events[0]!.metadata, { correlationId: "cmd-open", causationId: "cmd-open" })
        assert.deepStrictEqual(
          events.slice(1, 3).map((e) => e.metadata),
          [1, 2].map(() => ({ correlationId, causationId: "cmd-add", headers: { user: "ann" } }))
        )
        assert.strictEqual(events[3]!.metadata.correlationId, correlationId)
        assert.notStrictEqual(events[3]!.metadata.causationId, correlationId)
        assert.strictEqual(opened.events.length, 1)
        assert.strictEqual(yield* store.streamVersion(stream), 4)
      })
    )
  })
