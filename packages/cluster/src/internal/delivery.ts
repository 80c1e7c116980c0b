/**
 * Resending a stream entity's message while the cluster cannot deliver it or lost its reply: a runner died (its
 * connection's error comes back as a defect), a shard has no owner yet, a mailbox is full, the message storage
 * failed. The message is sent again with the same command id, so the command is appended at most once; the domain's
 * and the store's typed errors, and defects raised by the handler itself, are answers and are never resent.
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"

/** The tags of the errors, failures or defects, that say a message was not delivered or its reply was lost. */
const undelivered = new Set([
  "RpcClientError",
  "RunnerUnavailable",
  "RunnerNotRegistered",
  "EntityNotAssignedToRunner",
  "MailboxFull",
  "AlreadyProcessingMessage",
  "PersistenceError"
])

const tagOf = (value: unknown): string | undefined =>
  typeof value === "object" && value !== null && "_tag" in value && typeof value._tag === "string"
    ? value._tag
    : undefined

/** Why a message's exit says it was not delivered (or its reply lost), or `undefined` when it is an answer. */
export const undeliveredReason = (cause: Cause.Cause<unknown>): string | undefined => {
  const error = Cause.findError(cause)
  if (Result.isSuccess(error)) {
    const tag = tagOf(error.success)
    return tag !== undefined && undelivered.has(tag) ? tag : undefined
  }
  const defect = Cause.findDefect(cause)
  if (Result.isSuccess(defect)) {
    const tag = tagOf(defect.success)
    return tag !== undefined && undelivered.has(tag) ? tag : undefined
  }
  // Interrupted on the runner (its shard moved while the message waited): the next owner takes the resend.
  return Cause.hasInterruptsOnly(cause) ? "interrupted on the runner" : undefined
}

class Undelivered extends Data.TaggedError("Undelivered")<{ readonly reason: string }> {}

/**
 * Builds `send(stream, commandId, message)` (no command id for a load): runs `message`, and while it comes back undelivered sends it again (every
 * 100 ms, backing off to 1 s); when no reply came within `timeout` (default 30 s) of the first try, fails with
 * `failed(stream, commandId, attempts, reason)`.
 */
export const make =
  <F>(
    timeout: Duration.Input | undefined,
    failed: (stream: string, commandId: string | undefined, attempts: number, reason: string) => F
  ) =>
  <A, E, R>(
    stream: string,
    commandId: string | undefined,
    message: Effect.Effect<A, E, R>
  ): Effect.Effect<A, E | F, R> =>
    Effect.gen(function* () {
      let attempts = 0
      const attempt = Effect.suspend(() => {
        attempts++
        return message
      }).pipe(
        Effect.catchCause((cause): Effect.Effect<never, E | Undelivered> => {
          const reason = undeliveredReason(cause)
          return reason === undefined ? Effect.failCause(cause) : Effect.fail(new Undelivered({ reason }))
        })
      )
      const limit = timeout ?? "30 seconds"
      const schedule = Schedule.min([Schedule.exponential("100 millis", 1.5), Schedule.spaced("1 second")])
      let lastReason = "no reply"
      return yield* attempt.pipe(
        Effect.tapError((error) => Effect.sync(() => error instanceof Undelivered && (lastReason = error.reason))),
        Effect.retry({ schedule, while: (error) => error instanceof Undelivered }),
        // A send that never comes back (a runner frozen, a shard never assigned) is bounded by the same limit.
        Effect.timeoutOrElse({
          duration: limit,
          orElse: () =>
            Effect.fail(
              failed(
                stream,
                commandId,
                attempts,
                `${lastReason} within ${Duration.format(Duration.fromInputUnsafe(limit))}`
              )
            )
        })
      )
    }) as Effect.Effect<A, E | F, R>
