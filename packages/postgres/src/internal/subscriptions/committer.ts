/**
 * A session's commits: serialized, and refused once any of them failed or the session ended. A failed commit (of any
 * batch, however far the reader has read ahead of it) or the end of the session poisons the committer: every later
 * commit of its batches fails at once without touching the database, and the next read ends the session, so the
 * partition starts over from the checkpoint that really committed. Without this, a batch read ahead would
 * compare-and-set from the last good checkpoint and commit over the batch whose commit had failed. `tryCommitWith` is
 * the one exception: a failure of its own effect rolled everything back and leaves the committer usable, for `run` to
 * redo that batch (with a savepoint per event) before any later one.
 */
import type * as EventStore from "@evently/store/EventStore"
import * as Subscriptions from "@evently/store/Subscriptions"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Semaphore from "effect/Semaphore"
import type * as SqlClient from "effect/sql/SqlClient"
import * as PgTransaction from "../../PgTransaction.ts"
import type { CheckpointStore } from "./checkpoint.ts"
import { type Cursor, isAfter, type metricAttributes, storage } from "./cursor.ts"
import { checkpointPosition, eventsCommitted } from "./metrics.ts"

/** A session's committer (see the module). */
export type Committer = Effect.Success<ReturnType<typeof make>>

/** Makes the committer of a session; the end of the scope poisons it. */
export const make = Effect.fnUntraced(function* (
  sql: SqlClient.SqlClient,
  checkpoints: CheckpointStore,
  attributes: ReturnType<typeof metricAttributes>
) {
  let committed = checkpoints.initial
  let poisoned: Subscriptions.SubscriptionError | undefined
  // Why the session's reader stopped, if it failed: batches it had read before are still handed out, and their
  // commits fail with this error rather than a bare "ended", so that a reason that ends `run` (an unreadable row)
  // reaches it instead of a restart that would meet the same row again.
  let readerFailure: Subscriptions.SubscriptionError | undefined
  const permit = yield* Semaphore.make(1)
  // Under the permit: the session does not end (and give up its lock) while one of its commits is still running,
  // or a new session could take the partition and handle that batch again beside it.
  yield* Effect.addFinalizer(() =>
    permit.withPermit(
      Effect.sync(() => {
        poisoned ??=
          readerFailure ??
          new Subscriptions.SubscriptionStorageError({
            operation: "commit",
            cause: new Error("the session that read this batch has ended; the batch will be delivered again")
          })
      })
    )
  )
  // `keeps(error)`: a failure that leaves the committer usable (the batch's own, rolled back, to be redone).
  const poisonOnFailure = <A, E, R>(effect: Effect.Effect<A, E, R>, keeps: (error: E) => boolean = () => false) =>
    Effect.tapError(effect, (error) =>
      Effect.sync(() => {
        if (keeps(error)) return
        poisoned ??=
          error instanceof Subscriptions.SubscriptionStorageError || error instanceof Subscriptions.LeaseLost
            ? error
            : new Subscriptions.SubscriptionStorageError({ operation: "commit", cause: error })
      })
    )
  // Poisons inside the permit, so no commit can slip in between a failure and its poisoning.
  const guarded = <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    keeps?: (error: E | Subscriptions.SubscriptionError) => boolean
  ) =>
    permit.withPermit(
      poisonOnFailure(
        Effect.suspend((): Effect.Effect<A, E | Subscriptions.SubscriptionError, R> =>
          poisoned === undefined ? effect : Effect.fail(poisoned)
        ),
        keeps
      )
    )
  // Tagged once: a tagged metric computes its series key on its first update and keeps it.
  const committedEvents = Metric.withAttributes(eventsCommitted, attributes)
  const position = Metric.withAttributes(checkpointPosition, attributes)
  const afterCommit = (to: Cursor, count: number) =>
    Effect.gen(function* () {
      committed = to
      checkpoints.committed(to)
      yield* Metric.update(committedEvents, count)
      yield* Metric.update(position, Number(to.pos))
    })
  // `effect` and the checkpoint's compare-and-set in one transaction.
  const inTransaction = <A, E, R>(to: Cursor, count: number, effect: Effect.Effect<A, E, R>) =>
    Effect.gen(function* () {
      const from = committed
      const result = yield* PgTransaction.withTransactionOn(
        sql,
        Effect.tap(effect, () => (isAfter(to, from) ? checkpoints.advanceInTransaction(from, to) : Effect.void))
      )
      if (isAfter(to, from)) yield* afterCommit(to, count)
      return result
    }).pipe(Effect.catchTag("SqlError", (error) => Effect.fail(storage("commit")(error)))) as Effect.Effect<
      A,
      E | Subscriptions.SubscriptionError,
      R
    >
  return {
    poisoned: () => poisoned,
    committed: () => committed,
    readerFailed: (error: Subscriptions.SubscriptionError) => {
      readerFailure = error
    },
    commit: (to: Cursor, count: number) =>
      guarded(
        Effect.gen(function* () {
          if (!isAfter(to, committed)) return
          yield* checkpoints.advance(committed, to)
          yield* afterCommit(to, count)
        })
      ),
    commitWith: <A, E, R>(to: Cursor, count: number, effect: Effect.Effect<A, E, R>) =>
      guarded(inTransaction(to, count, effect)),
    // A failure of `effect` rolled the transaction back and committed nothing: the batch can be committed again.
    tryCommitWith: <A, E, R>(to: Cursor, count: number, effect: Effect.Effect<A, E, R>) =>
      Effect.suspend(() => {
        let effectFailed = false
        const body = Effect.tapError(effect, () => Effect.sync(() => (effectFailed = true)))
        return guarded(inTransaction(to, count, body), () => effectFailed)
      }),
    // Not under the permit: `run` parks from inside `commitWith`, which holds it.
    park: (event: EventStore.RecordedEvent, error: unknown) => poisonOnFailure(checkpoints.park(event, error))
  }
})
