import { assert, it } from "@effect/vitest"
import { CommandHandler, EventCodec, EventStore, RetryPolicy, Snapshots } from "@evently/store"
import { CommandHandlerSuite } from "@evently/testing"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { recording } from "./recordingTracer.ts"

const Counted = Schema.TaggedUnion({ Added: { n: Schema.Int } })
type Counted = typeof Counted.Type

class TooMany extends Schema.TaggedError<TooMany>()("TooMany", { total: Schema.Int }) {}

const counter = CommandHandler.make({
  decider: {
    initial: 0,
    evolve: (total: number, event: Counted) => total + event.n,
    decide: (command: { readonly _tag: "Add"; readonly n: number }, total: number) =>
      total + command.n > 10
        ? Result.fail(new TooMany({ total }))
        : Result.succeed([Counted.cases.Added.make({ n: command.n })])
  },
  codec: EventCodec.make(Counted)
})

it("derives RFC 9562 version 5 ids: the same inputs give the same id, other inputs another", () => {
  const id = CommandHandler.eventId("cart-1", "cmd-1", 0)
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  assert.strictEqual(CommandHandler.eventId("cart-1", "cmd-1", 0), id)
  const others = [
    CommandHandler.eventId("cart-1", "cmd-1", 1),
    CommandHandler.eventId("cart-2", "cmd-1", 0),
    CommandHandler.eventId("cart-1", "cmd-2", 0)
  ]
  assert.strictEqual(new Set([id, ...others]).size, 4)
})

it.live("the default retry policy makes 6 attempts (5 retries) before giving up", () =>
  Effect.gen(function* () {
    const store = yield* EventStore.EventStore
    const stale = EventStore.EventStore.of({
      ...store,
      append: (stream, _events, options) =>
        Effect.fail(
          new EventStore.WrongExpectedVersion({
            stream,
            expected: options?.expected ?? { _tag: "Any" },
            actual: 99
          })
        )
    })
    const handler = yield* Effect.provideService(counter, EventStore.EventStore, stale)
    const error = yield* Effect.flip(handler.handle("count-1", { _tag: "Add", n: 1 }))
    assert.instanceOf(error, CommandHandler.ConcurrencyRetriesExhausted)
    assert.strictEqual(error.attempts, 6)
    assert.include(error.message, "6 attempts")
    assert.strictEqual(yield* store.streamVersion("count-1"), 0)
  }).pipe(Effect.provide(EventStore.layerMemory), Effect.provide(RetryPolicy.layer(RetryPolicy.defaultSchedule)))
)

it.effect("spans CommandHandler.handle with stream, command tag, attempts and outcome", () => {
  const { spans, tracer } = recording()
  return Effect.gen(function* () {
    const handler = yield* counter
    yield* handler.handle("count-2", { _tag: "Add", n: 4 })
    yield* Effect.flip(handler.handle("count-2", { _tag: "Add", n: 9 }))
    const handled = spans.filter((span) => span.name === "CommandHandler.handle")
    assert.deepStrictEqual(
      handled.map((span) => Object.fromEntries(span.attributes)),
      [
        { stream: "count-2", "command.tag": "Add", attempts: 1, outcome: "appended" },
        { stream: "count-2", "command.tag": "Add", attempts: 1, outcome: "refused" }
      ]
    )
  }).pipe(Effect.withTracer(tracer), Effect.provide(EventStore.layerMemory))
})

CommandHandlerSuite.suite("the memory stores", Layer.merge(EventStore.layerMemory, Snapshots.layerMemory))
