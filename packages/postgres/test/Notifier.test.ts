import { assert, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Notifier from "../src/internal/notifier.ts"

it.effect("a send that dies does not stop later notifications", () =>
  Effect.gen(function* () {
    const sent: Array<ReadonlyArray<string>> = []
    const second = yield* Deferred.make<void>()
    const notifier = Notifier.make({
      context: Context.empty(),
      send: (categories) =>
        Effect.suspend(() => {
          sent.push(categories)
          return sent.length === 1 ? Effect.die(new Error("connection gone")) : Deferred.succeed(second, undefined)
        })
    })
    yield* notifier.signal(["cat"])
    // The first send runs in its own fiber: wait until it has run before signalling again.
    while (sent.length === 0) yield* Effect.yieldNow
    yield* Effect.yieldNow
    yield* notifier.signal(["dog"])
    yield* Deferred.await(second)
    assert.deepStrictEqual(sent, [["cat"], ["dog"]])
  })
)
