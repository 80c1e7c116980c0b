/**
 * Per-stream turns of one command handler (`oneAtATimePerStream`, on by default): the commands of this process for
 * one stream run one after another instead of racing. A fiber waits for a turn only when it holds none: a command
 * handled while a turn is held up its call chain (in the same fiber, or in a fiber it forked, which inherits the
 * context) runs at once, without the lock. On its own stream it then appends inside the outer command's turn, and the
 * outer command's append meets the new version and retries as any conflict does; on another stream it races as it
 * would with turns off. So turns never wait on each other, and nesting cannot deadlock.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as KeyedLock from "../../KeyedLock.ts"

/** Whether the current fiber, or a fiber up its call chain, holds a command handler's turn on a stream. */
const HoldsTurn = Context.Reference<boolean>("@evently/store/CommandHandler/HoldsTurn", {
  defaultValue: () => false
})

/** Runs a command's attempts in its stream's turn. */
export type InTurn<Key> = <A, E, R>(stream: Key, effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>

/** Turns by stream when `enabled`; else every command runs at once (and races). */
export const make = <Key>(enabled: boolean): InTurn<Key> => {
  if (!enabled) return (_stream, effect) => effect
  const turns = KeyedLock.makeUnsafe<Key>()
  return (stream, effect) =>
    HoldsTurn.use((holds) => (holds ? effect : turns.withLock(stream, Effect.provideService(effect, HoldsTurn, true))))
}
