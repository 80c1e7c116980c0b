import { assert, it } from "@effect/vitest"
import { EventStore, Subscriptions } from "@evently/store"
import * as Telemetry from "@evently/store/Telemetry"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { TestClock } from "effect/testing"

/** The memory subscriptions, with `status` recording each name asked and failing for `broken`. */
const recordingStatus = (asked: Array<string>) =>
  Layer.effect(
    Subscriptions.Subscriptions,
    Effect.gen(function* () {
      const subscriptions = yield* Subscriptions.Subscriptions
      return Subscriptions.Subscriptions.of({
        ...subscriptions,
        status: (name) => {
          asked.push(name)
          return name === "broken"
            ? Effect.fail(new Subscriptions.SubscriptionStorageError({ operation: "status", cause: "down" }))
            : subscriptions.status(name)
        }
      })
    })
  ).pipe(Layer.provide(Subscriptions.layerMemory), Layer.provide(EventStore.layerMemory))

it.effect("layerLag reads every named status when built, then once per interval, past one that fails", () => {
  const asked: Array<string> = []
  return Effect.gen(function* () {
    yield* Layer.build(Telemetry.layerLag(["broken", "emails"], { interval: "10 seconds" }))
    assert.deepStrictEqual(asked, ["broken", "emails"])
    yield* TestClock.adjust("9 seconds")
    assert.deepStrictEqual(asked, ["broken", "emails"])
    yield* TestClock.adjust("1 second")
    assert.deepStrictEqual(asked, ["broken", "emails", "broken", "emails"])
  }).pipe(Effect.scoped, Effect.provide(recordingStatus(asked)))
})
