import { assert, describe, it } from "@effect/vitest"
import { CommandHandler, EventCodec, EventStore, RetryPolicy } from "@evently/store"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"

const Counted = Schema.TaggedUnion({ Added: { n: Schema.Int } })
type Counted = typeof Counted.Type
type Add = { readonly _tag: "Add"; readonly n: number }

class TooMany extends Schema.TaggedError<TooMany>()("TooMany", { total: Schema.Int }) {}

const options = {
  decider: {
    initial: 0,
    evolve: (total: number, event: Counted) => total + event.n,
    decide: (command: Add, total: number) =>
      total + command.n > 10
        ? Result.fail(new TooMany({ total }))
        : Result.succeed([Counted.cases.Added.make({ n: command.n })])
  },
  codec: EventCodec.make(Counted)
}

class Counter extends CommandHandler.Service<Counter>()("test/Counter", options) {}

/** A memory store whose every append finds the stream changed: each attempt of a command conflicts. */
const alwaysStale = Layer.effect(
  EventStore.EventStore,
  Effect.map(EventStore.EventStore, (store) =>
    EventStore.EventStore.of({
      ...store,
      append: (stream, _events, appendOptions) =>
        Effect.fail(
          new EventStore.WrongExpectedVersion({
            stream,
            expected: appendOptions?.expected ?? { _tag: "Any" },
            actual: 99
          })
        )
    })
  )
).pipe(Layer.provide(EventStore.layerMemory))

/** The attempts a command made before it gave up. */
const attemptsOf = <R>(effect: Effect.Effect<unknown, unknown, R>) =>
  Effect.map(Effect.flip(effect), (error) => {
    assert.instanceOf(error, CommandHandler.ConcurrencyRetriesExhausted)
    return (error as CommandHandler.ConcurrencyRetriesExhausted).attempts
  })

const add = { _tag: "Add", n: 1 } as const

describe("CommandHandler.Service", () => {
  it.effect("is a service: its layer builds the handler on the store in context, a program yields it", () =>
    Effect.gen(function* () {
      const counter = yield* Counter
      yield* counter.handle("count-1", { _tag: "Add", n: 4 })
      const handled = yield* counter.handle("count-1", { _tag: "Add", n: 5 })
      assert.strictEqual(handled.state, 9)
      assert.strictEqual(handled.version, 2)
      const refused = yield* Effect.flip(counter.handle("count-1", { _tag: "Add", n: 5 }))
      assert.instanceOf(refused, TooMany)
      assert.strictEqual((yield* counter.load("count-1")).state, 9)
    }).pipe(Effect.provide(Counter.layer), Effect.provide(EventStore.layerMemory))
  )

  it.effect("CommandHandler.layer provides a handler as a service class of the user's own", () => {
    class Mine extends CommandHandler.Service<Mine>()("test/Mine", options) {}
    return Effect.gen(function* () {
      const mine = yield* Mine
      assert.strictEqual((yield* mine.handle("count-2", add)).state, 1)
    }).pipe(Effect.provide(CommandHandler.layer(Mine, options)), Effect.provide(EventStore.layerMemory))
  })
})

describe("retry policy precedence", () => {
  it.effect("a RetryPolicy provided to the handler's layer applies to every command it runs", () =>
    Effect.gen(function* () {
      const counter = yield* Counter
      assert.strictEqual(yield* attemptsOf(counter.handle("count-1", add)), 1)
      assert.strictEqual(yield* attemptsOf(counter.handle("count-2", add)), 1)
    }).pipe(Effect.provide(Counter.layer.pipe(Layer.provide(RetryPolicy.layerNoRetry))), Effect.provide(alwaysStale))
  )

  it.effect("a RetryPolicy in the context make runs in is the handler's policy", () =>
    Effect.gen(function* () {
      const counter = yield* Effect.provide(CommandHandler.make(options), RetryPolicy.layer(Schedule.recurs(9)))
      assert.strictEqual(yield* attemptsOf(counter.handle("count-1", add)), 10)
    }).pipe(Effect.provide(alwaysStale))
  )

  it.effect("the handler's retry option applies to every command, and beats the policy it was built under", () =>
    Effect.gen(function* () {
      const counter = yield* CommandHandler.make({ ...options, retry: Schedule.recurs(1) })
      assert.strictEqual(yield* attemptsOf(counter.handle("count-1", add)), 2)
      assert.strictEqual(yield* attemptsOf(counter.handle("count-2", add)), 2)
    }).pipe(Effect.provide(RetryPolicy.layer(Schedule.recurs(4))), Effect.provide(alwaysStale))
  )

  it.effect("a RetryPolicy provided around one call overrides the handler's for that call only", () =>
    Effect.gen(function* () {
      const counter = yield* CommandHandler.make({ ...options, retry: Schedule.recurs(1) })
      const once = counter.handle("count-1", add).pipe(Effect.provide(RetryPolicy.layer(Schedule.recurs(3))))
      assert.strictEqual(yield* attemptsOf(once), 4)
      assert.strictEqual(
        yield* attemptsOf(counter.handle("count-1", add).pipe(Effect.provide(RetryPolicy.layerNoRetry))),
        1
      )
      assert.strictEqual(yield* attemptsOf(counter.handle("count-1", add)), 2)
    }).pipe(Effect.provide(alwaysStale))
  )

  it.effect("a call-time policy overrides one given to the layer", () =>
    Effect.gen(function* () {
      const counter = yield* Counter
      const call = counter.handle("count-1", add).pipe(Effect.provide(RetryPolicy.layer(Schedule.recurs(2))))
      assert.strictEqual(yield* attemptsOf(call), 3)
      assert.strictEqual(yield* attemptsOf(counter.handle("count-1", add)), 1)
    }).pipe(Effect.provide(Counter.layer.pipe(Layer.provide(RetryPolicy.layerNoRetry))), Effect.provide(alwaysStale))
  )

  it.effect("a policy provided to the whole program (build and calls alike) does not override the retry option", () => {
    const programWide = RetryPolicy.layer(Schedule.recurs(5))
    return Effect.gen(function* () {
      const counter = yield* CommandHandler.make({ ...options, retry: Schedule.recurs(2) })
      assert.strictEqual(yield* attemptsOf(counter.handle("count-1", add)), 3)
    }).pipe(Effect.provide(programWide), Effect.provide(alwaysStale))
  })

  it.live("with no policy anywhere, the default makes 6 attempts", () =>
    Effect.gen(function* () {
      const counter = yield* Counter
      assert.strictEqual(yield* attemptsOf(counter.handle("count-1", add)), 6)
    }).pipe(Effect.provide(Counter.layer), Effect.provide(alwaysStale))
  )
})
