/**
 * Per-stream turns of one command handler (`oneAtATimePerStream`, on by default): the commands of this process for
 * one stream run one after another instead of racing. A fiber waits for a turn only when it holds none: a command
 * handled while a turn is held up its call chain (in the same fiber, or in a fiber it forked, which inherits the
 * context) runs at once, without the lock. On its own stream it then appends inside the outer command's turn, and the
 * outer command's append meets the new version and retries as any conflict does; on another stream it races as it
 * would with turns off. So turns never wait on each other, and nesting cannot deadlock.
 *
 * Commands that wait for a stream's turn wait together: each joins the stream's queue, and the fiber that gets the
 * turn takes every command queued by then (up to a bound) and handles them as one group, one load and one append for
 * all (see `group.ts`); the others find their command done when their own turn comes and return its outcome. So a hot
 * stream costs one round trip per group of commands, not per command.
 */
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as KeyedLock from "../../KeyedLock.ts"

/** Whether the current fiber, or a fiber up its call chain, holds a command handler's turn on a stream. */
export const HoldsTurn = Context.Reference<boolean>("@evently/store/CommandHandler/HoldsTurn", {
  defaultValue: () => false
})

/** A command waiting in its stream's queue, and where its outcome goes. */
export interface Queued<A, E> {
  readonly done: Deferred.Deferred<A, E>
}

/** At most this many queued commands are handled as one group. */
export const maxGroup = 64

/** Turns by stream. */
export const make = <Key>() => {
  const locks = KeyedLock.makeUnsafe<Key>()
  // Each stream's queue holds one handler's members, of one type.
  const queues = new Map<Key, Array<unknown>>()

  const takeQueued = (stream: Key): Array<unknown> => {
    const queue = queues.get(stream)
    if (queue === undefined) return []
    const taken = queue.splice(0, maxGroup)
    if (queue.length === 0) queues.delete(stream)
    return taken
  }

  const leave = (stream: Key, member: unknown): void => {
    const queue = queues.get(stream)
    const index = queue?.indexOf(member) ?? -1
    if (index >= 0) queue!.splice(index, 1)
    if (queue?.length === 0) queues.delete(stream)
  }

  /** Runs `effect` in the stream's turn (at once when a turn is held up the call chain). */
  const inTurn = <A, E, R>(stream: Key, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    HoldsTurn.use((holds) => (holds ? effect : locks.withLock(stream, Effect.provideService(effect, HoldsTurn, true))))

  /**
   * Queues `member` on its stream and takes the stream's turn; whoever has the turn hands the queued members to
   * `handleAll`, which completes each one's `done`. Returns the member's outcome.
   */
  const queued = <A, E, M extends Queued<A, E>>(
    stream: Key,
    member: M,
    handleAll: (members: ReadonlyArray<M>) => Effect.Effect<void>
  ): Effect.Effect<A, E> =>
    Effect.suspend(() => {
      const queue = queues.get(stream) ?? []
      queues.set(stream, queue)
      queue.push(member)
      // With the turn: handle what is queued, unless an earlier turn took it all. Other callers' commands are not
      // abandoned halfway if this caller is interrupted; its own alone may be.
      const drain = Effect.suspend(() => {
        const taken = takeQueued(stream) as Array<M>
        if (taken.length === 0) return Effect.void
        const all = handleAll(taken).pipe(
          Effect.onExit((exit) =>
            Exit.isSuccess(exit)
              ? Effect.void
              : Effect.forEach(taken, (each) => Deferred.failCause(each.done, exit.cause), { discard: true })
          )
        )
        return taken.length === 1 && taken[0] === member ? all : Effect.uninterruptible(all)
      })
      return locks.withLock(stream, Effect.provideService(drain, HoldsTurn, true)).pipe(
        Effect.onInterrupt(() => Effect.sync(() => leave(stream, member))),
        Effect.andThen(Deferred.await(member.done))
      )
    })

  return { inTurn, queued }
}
