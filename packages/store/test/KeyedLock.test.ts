import { assert, it } from "@effect/vitest"
import { KeyedLock } from "@evently/store"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"

it.effect("one holder per key, other keys go on, and an idle key's lock is dropped", () =>
  Effect.gen(function* () {
    const locks = KeyedLock.makeUnsafe<string>()
    const order: Array<string> = []
    const gate = yield* Deferred.make<void>()
    const first = yield* Effect.forkChild(
      locks.withLock(
        "a",
        Effect.andThen(
          Deferred.await(gate),
          Effect.sync(() => order.push("a1"))
        )
      )
    )
    yield* Effect.yieldNow
    const second = yield* Effect.forkChild(
      locks.withLock(
        "a",
        Effect.sync(() => order.push("a2"))
      )
    )
    yield* locks.withLock(
      "b",
      Effect.sync(() => order.push("b"))
    )
    yield* Effect.yieldNow
    assert.deepStrictEqual(order, ["b"])
    assert.strictEqual(locks.size(), 1)
    yield* Deferred.succeed(gate, undefined)
    yield* Fiber.join(first)
    yield* Fiber.join(second)
    assert.deepStrictEqual(order, ["b", "a1", "a2"])
    assert.strictEqual(locks.size(), 0)
  })
)

it.effect("takeScoped holds the key until its scope closes", () =>
  Effect.gen(function* () {
    const locks = KeyedLock.makeUnsafe<string>()
    const order: Array<string> = []
    const release = yield* Deferred.make<void>()
    const holder = yield* Effect.forkChild(
      Effect.scoped(
        Effect.andThen(
          locks.takeScoped("p"),
          Effect.andThen(
            Deferred.await(release),
            Effect.sync(() => order.push("held"))
          )
        )
      )
    )
    yield* Effect.yieldNow
    const waiter = yield* Effect.forkChild(
      Effect.scoped(
        Effect.andThen(
          locks.takeScoped("p"),
          Effect.sync(() => order.push("next"))
        )
      )
    )
    yield* Effect.yieldNow
    assert.deepStrictEqual(order, [])
    yield* Deferred.succeed(release, undefined)
    yield* Fiber.join(holder)
    yield* Fiber.join(waiter)
    assert.deepStrictEqual(order, ["held", "next"])
    assert.strictEqual(locks.size(), 0)
  })
)
