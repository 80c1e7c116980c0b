/**
 * Conflicts on demand: an `EventStore` wrapper that makes appends meet a changed stream deterministically, so the
 * retry paths of a command handler (or of any code that appends with an expected version) can be tested on the memory
 * store, where concurrent fibers otherwise never interleave between a read and an append.
 *
 * ```ts
 * import { CommandHandler, EventCodec } from "@evently/store"
 * import { Conflicts } from "@evently/testing"
 * import * as Effect from "effect/Effect"
 * import * as Result from "effect/Result"
 * import * as Schema from "effect/Schema"
 *
 * const AccountEvent = Schema.TaggedUnion({ Deposited: { amount: Schema.Int } })
 * type Deposit = { readonly _tag: "Deposit"; readonly amount: number }
 * const deposits = CommandHandler.make({
 *   decider: {
 *     initial: 0,
 *     evolve: (balance: number, event: typeof AccountEvent.Type) => balance + event.amount,
 *     decide: (command: Deposit) => Result.succeed([AccountEvent.cases.Deposited.make({ amount: command.amount })])
 *   },
 *   codec: EventCodec.make(AccountEvent),
 *   // Racing: with turns (the default), commands of one handler on one stream never read the same version.
 *   oneAtATimePerStream: false
 * })
 *
 * // The first two appends each find that a rival wrote first: the command succeeds on its third attempt.
 * export const retried = Effect.gen(function* () {
 *   const accounts = yield* deposits
 *   const handled = yield* accounts.handle("account-1", { _tag: "Deposit", amount: 10 })
 *   return { attempts: handled.attempts, injected: yield* (yield* Conflicts.Conflicts).injected } // 3 and 2
 * }).pipe(
 *   Effect.provide(Conflicts.layerMemory({ conflicts: 2, rival: () => [{ type: "Deposited", data: { amount: 1 } }] }))
 * )
 *
 * // 8 concurrent commands all read the same version, then append together: 7 of them conflict and retry.
 * export const racing = Effect.gen(function* () {
 *   const accounts = yield* deposits
 *   const deposit = { _tag: "Deposit", amount: 1 } as const
 *   yield* Effect.forEach(Array.from({ length: 8 }, () => deposit), (command) => accounts.handle("account-2", command), {
 *     concurrency: "unbounded"
 *   })
 *   return (yield* accounts.load("account-2")).state // 8
 * }).pipe(Effect.provide(Conflicts.layerMemory({ rendezvous: 8 })))
 * ```
 *
 * Only appends that check a version (an `expected` other than `Any`) are touched.
 *
 * @since 0.2.0
 */
import { EventStore } from "@evently/store"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Latch from "effect/Latch"
import * as Layer from "effect/Layer"

/**
 * What the wrapper does to the appends that check a version (counted from 0 in the order they arrive).
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /**
   * Which of those appends conflict: the first `n`, or those a predicate picks. A conflicting append fails with
   * `WrongExpectedVersion` and writes nothing, or, with `rival`, meets a stream a rival has just extended.
   */
  readonly conflicts?: number | ((append: { readonly stream: string; readonly index: number }) => boolean) | undefined
  /**
   * The events a rival appends (with `Any`) just before each conflicting append, for real: the append then fails in
   * the store itself, and the retry reads the rival's events.
   */
  readonly rival?: ((stream: string) => ReadonlyArray<EventStore.NewEvent>) | undefined
  /**
   * The first `n` appends wait for each other, then go on together in the order they arrived: `n` concurrent
   * commands on one stream all read the same version before any appends, so exactly one wins each round. The
   * commands must race: a command handler that takes turns per stream (its default) would wait here forever, so
   * build it with `oneAtATimePerStream: false`.
   */
  readonly rendezvous?: number | undefined
}

/**
 * What the wrapper has done: the conflicts it caused (`injected`: appends failed or preceded by a rival) and the
 * appends it saw that check a version.
 *
 * @since 0.2.0
 * @category services
 */
export class Conflicts extends Context.Service<
  Conflicts,
  {
    readonly injected: Effect.Effect<number>
    readonly appends: Effect.Effect<number>
  }
>()("@evently/testing/Conflicts") {}

/**
 * Wraps the `EventStore` in context with the conflicts `options` describe.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<EventStore.EventStore | Conflicts, never, EventStore.EventStore> =>
  Layer.effectContext(
    Effect.gen(function* () {
      const store = yield* EventStore.EventStore
      const counts = { injected: 0, appends: 0 }
      const rendezvous = Math.max(0, options.rendezvous ?? 0)
      const arrived = yield* Latch.make(rendezvous === 0)
      const conflicts = options.conflicts ?? 0
      const conflicting = (stream: string, index: number): boolean =>
        typeof conflicts === "number" ? index < conflicts : conflicts({ stream, index })

      const append: EventStore.EventStore["Service"]["append"] = (stream, events, appendOptions) =>
        Effect.gen(function* () {
          const expected = appendOptions?.expected
          if (expected === undefined || expected._tag === "Any")
            return yield* store.append(stream, events, appendOptions)
          const index = counts.appends++
          if (index < rendezvous) {
            if (index + 1 === rendezvous) yield* arrived.open
            yield* arrived.await
          }
          if (!conflicting(stream, index)) return yield* store.append(stream, events, appendOptions)
          counts.injected++
          if (options.rival !== undefined) {
            yield* store.append(stream, options.rival(stream))
            return yield* store.append(stream, events, appendOptions)
          }
          const actual = yield* store.streamVersion(stream)
          return yield* new EventStore.WrongExpectedVersion({ stream, expected, actual })
        })

      return Context.make(EventStore.EventStore, EventStore.EventStore.of({ ...store, append })).pipe(
        Context.add(
          Conflicts,
          Conflicts.of({
            injected: Effect.sync(() => counts.injected),
            appends: Effect.sync(() => counts.appends)
          })
        )
      )
    })
  )

/**
 * {@link layer} over a fresh `EventStore.layerMemory`.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerMemory = (options: Options): Layer.Layer<EventStore.EventStore | Conflicts> =>
  layer(options).pipe(Layer.provide(EventStore.layerMemory))
