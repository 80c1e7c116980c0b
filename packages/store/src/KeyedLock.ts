/**
 * One lock per key, in this process: a fiber that holds a key's lock makes the others that want it wait, while
 * fibers on other keys go on. A key's lock is dropped when no fiber holds or awaits it, so any number of keys can pass
 * through. What a command handler's `oneAtATimePerStream` and a subscription's one-worker-per-partition use.
 *
 * @since 0.2.0
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"

/**
 * Locks by key.
 *
 * @since 0.2.0
 * @category models
 */
export interface KeyedLock<Key> {
  /** Runs `effect` holding the key's lock (waiting for it first). */
  readonly withLock: <A, E, R>(key: Key, effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** Takes the key's lock (waiting for it first) until the scope closes. */
  readonly takeScoped: (key: Key) => Effect.Effect<void, never, Scope.Scope>
  /** The keys whose lock is held or awaited now. */
  readonly size: () => number
}

interface Entry {
  readonly lock: Semaphore.Semaphore
  users: number
}

/**
 * Makes a set of locks by key (compared as `Map` keys are).
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeUnsafe = <Key>(): KeyedLock<Key> => {
  const entries = new Map<Key, Entry>()
  const enter = (key: Key): Entry => {
    let entry = entries.get(key)
    if (entry === undefined) {
      entry = { lock: Semaphore.makeUnsafe(1), users: 0 }
      entries.set(key, entry)
    }
    entry.users++
    return entry
  }
  const leave = (key: Key, entry: Entry): void => {
    if (--entry.users === 0 && entries.get(key) === entry) entries.delete(key)
  }
  return {
    // Entering and attaching the release happen in one uninterruptible step: an interrupt between them (a fiber may
    // yield there) would leave the entry counted as used for good.
    withLock: (key, effect) =>
      Effect.uninterruptibleMask((restore) => {
        const entry = enter(key)
        return restore(entry.lock.withPermit(effect)).pipe(Effect.ensuring(Effect.sync(() => leave(key, entry))))
      }),
    takeScoped: (key) =>
      Effect.acquireRelease(
        Effect.sync(() => enter(key)),
        (entry) => Effect.sync(() => leave(key, entry))
      ).pipe(
        Effect.flatMap((entry) => entry.lock.takeScoped(1)),
        Effect.asVoid
      ),
    size: () => entries.size
  }
}

/**
 * {@link makeUnsafe} as an effect.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = <Key>(): Effect.Effect<KeyedLock<Key>> => Effect.sync(() => makeUnsafe<Key>())
