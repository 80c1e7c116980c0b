import { assert, it } from "@effect/vitest"
import { CommandHandler, EventCodec, EventStore } from "@evently/store"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { recording } from "./recordingTracer.ts"

const Counted = Schema.TaggedUnion({ Added: { n: Schema.Int } })
type Counted = typeof Counted.Type

const counter = CommandHandler.make({
  decider: {
    initial: 0,
    evolve: (total: number, event: Counted) => total + event.n,
    decide: (command: { readonly n: number }, _total: number) =>
      Result.succeed([Counted.cases.Added.make({ n: command.n })])
  },
  codec: EventCodec.make(Counted),
  cache: false
})

/**
 * The memory store, except that the second event of `count-damaged` is a row an adapter cannot read: its reads
 * deliver the first event and then fail with an `UnreadableEvent`, as the Postgres adapter does with a damaged row.
 */
const damaged = Effect.gen(function* () {
  const store = yield* EventStore.makeMemory
  const unreadable = new EventStore.UnreadableEvent({
    position: 2n,
    stream: "count-damaged",
    reason: "its metadata null is not { correlationId?, causationId?, headers? } with string values"
  })
  return EventStore.EventStore.of({
    ...store,
    readStream: (stream, options) =>
      stream === "count-damaged"
        ? Stream.mapEffect(store.readStream(stream, options), (event) =>
            event.streamVersion === 2 ? Effect.fail(unreadable) : Effect.succeed(event)
          )
        : store.readStream(stream, options)
  })
})

it.effect(
  "a stored event the store cannot read fails load and handle with its UnreadableEvent, counted as failed",
  () => {
    const { spans, tracer } = recording()
    return Effect.gen(function* () {
      const store = yield* damaged
      yield* Effect.gen(function* () {
        const handler = yield* counter
        yield* handler.handle("count-damaged", { n: 1 })
        yield* handler.handle("count-damaged", { n: 2 })
        const runs: ReadonlyArray<Effect.Effect<unknown, unknown>> = [
          handler.load("count-damaged"),
          handler.handle("count-damaged", { n: 3 }),
          handler.handle("count-damaged", { n: 3 }, { commandId: "command-1" })
        ]
        for (const run of runs) {
          const error = yield* Effect.flip(run)
          assert.instanceOf(error, EventStore.UnreadableEvent)
          assert.strictEqual(
            error.message,
            "Stored event at position 2 on stream 'count-damaged' cannot be read: its metadata null is not " +
              "{ correlationId?, causationId?, headers? } with string values"
          )
        }
        assert.strictEqual(yield* store.streamVersion("count-damaged"), 2)
      }).pipe(Effect.provideService(EventStore.EventStore, store))
      const outcomes = spans
        .filter((span) => span.name === "CommandHandler.handle")
        .map((span) => span.attributes.get("outcome"))
      assert.deepStrictEqual(outcomes, ["appended", "appended", "failed", "failed"])
    }).pipe(Effect.withTracer(tracer))
  }
)
