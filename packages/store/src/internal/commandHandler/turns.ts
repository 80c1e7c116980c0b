/**
 * Per-stream turns of one command handler (`oneAtATimePerStream`, on by default): the commands of this process for
 * one stream run one after another instead of racing. A fiber waits for a turn only when it holds none: a command
 * handled while a turn is held up its call chain (in the same fiber, or in a fiber it forked, which inherits the
 * context) runs at once, without the lock. On its own stream it then appends inside the outer command's turn, and the
 * outer command's append meets the new version and retries as any conflict does; on another stream it races as it
 * would with turns off. So turns never wait on each other, and nesting cannot deadlock.
 *
 * Commands that wait for a stream's turn wait together: each joins the stream's queue, and one fiber at a time drains
 * it, taking in each turn every command queued by then (up to a bound) and handling them as one group, one load and
 * one append for all (see `group.ts`); the others only wait for their outcome. The draining fiber is the first caller
 * that found nobody draining; once its own command is done it hands what is still queued to a fiber of its own, so no
 * caller waits for other callers' commands. A hot stream costs one round trip per group of commands, not per command.
 */
import * as Cause from "effect/Cause"
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

/** Handles a group of queued commands, completing each one's `done`. */
type HandleAll = (members: ReadonlyArray<unknown>) => Effect.Effect<void>

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

  // The streams whose queue a fiber is draining now: a command queued there is handled by that fiber.
  const draining = new Set<Key>()

  /**
   * In the stream's turn, handles the commands queued by then (at most `maxGroup`); false when there were none, and
   * then nobody drains the stream any more. Other callers' commands are never abandoned halfway; the caller's own,
   * alone, may be interrupted as any command.
   */
  const drainOnce = (stream: Key, handleAll: HandleAll, own?: unknown): Effect.Effect<boolean> =>
    locks.withLock(
      stream,
      // Taking commands from the queue and attaching what completes them happen in one uninterruptible step, so a
      // taken command is never left without an outcome.
      Effect.uninterruptibleMask((restore) => {
        const taken = takeQueued(stream)
        if (taken.length === 0) {
          // In the same step as finding the queue empty: a command queued after this drains it itself.
          draining.delete(stream)
          return Effect.succeed(false)
        }
        const all = taken.length === 1 && taken[0] === own ? restore(handleAll(taken)) : handleAll(taken)
        return all.pipe(
          Effect.onExit((exit) =>
            Exit.isSuccess(exit)
              ? Effect.void
              : Effect.forEach(
                  taken,
                  (each) => Deferred.failCause((each as Queued<unknown, unknown>).done, exit.cause),
                  {
                    discard: true
                  }
                )
          ),
          // A defect of `handleAll` (it completes every command itself, so none is expected) failed the commands it
          // took; the queue goes on to the next group rather than stopping with the stream marked as drained.
          Effect.catchCause((cause) => (Cause.hasInterruptsOnly(cause) ? Effect.failCause(cause) : Effect.void)),
          Effect.as(true)
        )
      }).pipe(Effect.provideService(HoldsTurn, true))
    )

  /** Drains the stream's queue until it is empty, then lets the next command drain it. */
  const drainAll = (stream: Key, handleAll: HandleAll): Effect.Effect<void> =>
    Effect.flatMap(drainOnce(stream, handleAll), (more) => (more ? drainAll(stream, handleAll) : Effect.void))

  /**
   * Once the draining caller has its own outcome (or is interrupted): commands still queued are drained by a fiber
   * of their own, so the caller returns at once and none of them waits for a caller that left.
   */
  const handOff = (stream: Key, handleAll: HandleAll): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (!queues.has(stream)) {
        draining.delete(stream)
        return Effect.void
      }
      return Effect.asVoid(Effect.forkDetach(drainAll(stream, handleAll)))
    })

  /**
   * Queues `member` on its stream. The first caller to find nobody draining the stream drains it (in its turn, each
   * time every command queued by then, as one group for `handleAll`, which completes each one's `done`) until its own
   * command is done, then hands the rest off; every other caller waits for its command's outcome.
   */
  const queued = <A, E, M extends Queued<A, E>>(
    stream: Key,
    member: M,
    handleMembers: (members: ReadonlyArray<M>) => Effect.Effect<void>
  ): Effect.Effect<A, E> =>
    // Queueing and attaching what undoes it happen in one uninterruptible step: an interrupt in between (a fiber may
    // yield there) would leave the command queued, or the stream marked as drained by a caller that left, for good.
    // The caller can be interrupted only where `leave` and `handOff` are in place.
    Effect.uninterruptibleMask((restore) => {
      // The queue holds this handler's members only: `handleAll` gets what it queued.
      const handleAll = handleMembers as HandleAll
      const queue = queues.get(stream) ?? []
      queues.set(stream, queue)
      queue.push(member)
      const outcome = restore(Deferred.await(member.done)).pipe(
        Effect.onInterrupt(() => Effect.sync(() => leave(stream, member)))
      )
      if (draining.has(stream)) return outcome
      draining.add(stream)
      // Until its own command is done; an empty queue also ends it, as its command then left the queue.
      const untilDone: Effect.Effect<void> = Effect.flatMap(drainOnce(stream, handleAll, member), (more) =>
        more && !Deferred.isDoneUnsafe(member.done) ? untilDone : Effect.void
      )
      return restore(untilDone).pipe(
        Effect.onInterrupt(() => Effect.sync(() => leave(stream, member))),
        Effect.ensuring(handOff(stream, handleAll)),
        Effect.andThen(outcome)
      )
    })

  return { inTurn, queued }
}
