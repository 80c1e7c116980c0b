import { assert, it } from "@effect/vitest"
import { EventStore, ExpectedVersion } from "@evently/store"
import * as Effect from "effect/Effect"
import { recording } from "./recordingTracer.ts"

it.effect(
  "the memory store's spans: append with the stream, the expected version and the events; streamVersion with the stream",
  () => {
    const { spans, tracer } = recording()
    return Effect.gen(function* () {
      const store = yield* EventStore.EventStore
      yield* store.append("cart-1", [{ type: "Opened", data: {} }], { expected: ExpectedVersion.NoStream })
      yield* store.append(
        "cart-1",
        [
          { type: "Added", data: {} },
          { type: "Added", data: {} }
        ],
        {
          expected: ExpectedVersion.Exact(1)
        }
      )
      yield* Effect.flip(
        store.append("cart-2", [{ type: "Added", data: {} }], { expected: ExpectedVersion.StreamExists })
      )
      yield* store.append("cart-3", [])
      yield* store.streamVersion("cart-1")
      assert.deepStrictEqual(
        spans
          .filter((span) => span.name === "EventStore.memory.append")
          .map((span) => Object.fromEntries(span.attributes)),
        [
          { stream: "cart-1", expected_version: "no_stream", events: 1 },
          { stream: "cart-1", expected_version: "1", events: 2 },
          { stream: "cart-2", expected_version: "stream_exists", events: 1 },
          { stream: "cart-3", expected_version: "any", events: 0 }
        ]
      )
      assert.deepStrictEqual(
        spans
          .filter((span) => span.name === "EventStore.memory.streamVersion")
          .map((span) => Object.fromEntries(span.attributes)),
        [{ stream: "cart-1" }]
      )
    }).pipe(Effect.withTracer(tracer), Effect.provide(EventStore.layerMemory))
  }
)
