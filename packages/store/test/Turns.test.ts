/**
 * The per-stream turns under interruption at every point a fiber can yield: the scheduler is made to yield after
 * every few operations, and the first caller is interrupted after each number of yields in turn. Whatever the point,
 * the next command on the stream must be handled, and nothing may stay queued or locked.
 */
import { assert, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Scheduler from "effect/Scheduler"
import * as KeyedLock from "../src/KeyedLock.ts"
import * as Turns from "../src/internal/commandHandler/turns.ts"

interface Member {
  readonly name: string
  readonly done: Deferred.Deferred<string>
}

const member = (name: string): Member => ({ name, done: Deferred.makeUnsafe<string>() })

/** Fails the trial, instead of hanging it, when the second command is never handled. */
const within = <A, E, R>(effect: Effect.Effect<A, E, R>, what: string) =>
  Effect.timeoutOrElse(effect, {
    duration: "2 seconds",
    orElse: () => Effect.die(new Error(`${what}: no outcome in 2 seconds`))
  })

const trial = (maxOps: number, yields: number) =>
  Effect.gen(function* () {
    const turns = Turns.make<string>()
    const applied: Array<string> = []
    const handleAll = (members: ReadonlyArray<Member>) =>
      Effect.forEach(
        members,
        (each) =>
          Effect.andThen(
            Effect.sync(() => applied.push(each.name)),
            Deferred.succeed(each.done, each.name)
          ),
        { discard: true }
      )
    const first = member("first")
    const fiber = yield* Effect.forkChild(
      Effect.provideService(
        turns.queued<string, never, Member>("s", first, handleAll),
        Scheduler.MaxOpsBeforeYield,
        maxOps
      )
    )
    for (let i = 0; i < yields; i++) yield* Effect.yieldNow
    const exit = yield* within(Fiber.interrupt(fiber).pipe(Effect.andThen(Fiber.await(fiber))), "the first caller")
    const where = `yielding every ${maxOps} ops, interrupted after ${yields} yields`
    // A caller that got its outcome had its command applied (one interrupted after that may have it applied too).
    if (exit._tag === "Success") assert.deepStrictEqual(applied, ["first"], where)
    const appliedBefore = [...applied]
    const second = yield* within(
      turns.queued<string, never, Member>("s", member("second"), handleAll),
      `${where}: the next command`
    )
    assert.strictEqual(second, "second", where)
    // Nothing of the interrupted caller was applied after it left, nor left queued to run with the next command.
    assert.deepStrictEqual(applied, [...appliedBefore, "second"], where)
  })

it.live(
  "a caller interrupted at any point leaves the stream's turns working, and its command is never applied after it left",
  () =>
    Effect.gen(function* () {
      // Fewer than 3 operations between yields livelocks effect's own run loop.
      for (const maxOps of [3, 4, 5, 6, 7, 9]) {
        for (let yields = 0; yields < 24; yields++) yield* trial(maxOps, yields)
      }
    })
)

it.live("a caller interrupted at any point while taking a key's lock leaves no lock behind", () =>
  Effect.gen(function* () {
    const locks = KeyedLock.makeUnsafe<string>()
    for (const maxOps of [3, 4, 5, 7]) {
      for (let yields = 0; yields < 16; yields++) {
        const fiber = yield* Effect.forkChild(
          Effect.provideService(locks.withLock("k", Effect.never), Scheduler.MaxOpsBeforeYield, maxOps)
        )
        for (let i = 0; i < yields; i++) yield* Effect.yieldNow
        yield* Fiber.interrupt(fiber)
        assert.strictEqual(locks.size(), 0, `yielding every ${maxOps} ops, interrupted after ${yields} yields`)
      }
    }
  })
)
