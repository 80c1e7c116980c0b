import { assert, it } from "@effect/vitest"
import { EventStore, Subscriptions } from "@evently/store"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { TestClock } from "effect/testing"
import { recording } from "./recordingTracer.ts"

it.effect(
  "run: a root span Subscriptions.batch per batch, with its size, positions and the age of its first event",
  () => {
    const { spans, tracer } = recording()
    return Effect.gen(function* () {
      const store = yield* EventStore.EventStore
      const subs = yield* Subscriptions.Subscriptions
      const { positions } = yield* store.append("cart-1", [
        { type: "Added", data: {} },
        { type: "Added", data: {} },
        { type: "Added", data: {} }
      ])
      yield* TestClock.adjust("5 seconds")
      const last = yield* Deferred.make<void>()
      const fiber = yield* subs
        .run("spans", (event) => (event.position === positions[2]! ? Deferred.succeed(last, undefined) : Effect.void), {
          batchSize: 2
        })
        .pipe(Effect.forkChild)
      yield* Deferred.await(last)
      yield* Fiber.interrupt(fiber)
      const batches = spans.filter((span) => span.name === "Subscriptions.batch")
      assert.deepStrictEqual(
        batches.map((span) => Object.fromEntries(span.attributes)),
        [
          {
            subscription: "spans",
            partition: 0,
            "batch.size": 2,
            "batch.first_position": Number(positions[0]!),
            "batch.last_position": Number(positions[1]!),
            "lag.seconds": 5
          },
          {
            subscription: "spans",
            partition: 0,
            "batch.size": 1,
            "batch.first_position": Number(positions[2]!),
            "batch.last_position": Number(positions[2]!),
            "lag.seconds": 5
          }
        ]
      )
      // Roots of their own traces, not children of the run's span (which lasts as long as the run).
      assert.deepStrictEqual(
        batches.map((span) => Option.isNone(span.parent)),
        [true, true]
      )
      assert.isTrue(spans.some((span) => span.name === "Subscriptions.run"))
    }).pipe(
      Effect.withTracer(tracer),
      Effect.provide(Subscriptions.layerMemory.pipe(Layer.provideMerge(EventStore.layerMemory)))
    )
  }
)
