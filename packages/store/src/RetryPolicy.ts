/**
 * How a command handler retries when the stream changed between its read and its append (a
 * `WrongExpectedVersion`): a `Schedule` in a context reference, replaced by a layer.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"

/**
 * The default: up to 5 retries after jittered exponential delays from 10 ms (about 10, 20, 40, 80, 160 ms).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultSchedule: Schedule.Schedule<unknown> = Schedule.exponential("10 millis").pipe(
  Schedule.jittered,
  Schedule.upTo({ times: 5 })
)

/**
 * The retry schedule in use; {@link defaultSchedule} unless a layer provides another.
 *
 * @since 0.1.0
 * @category services
 */
export class RetryPolicy extends Context.Reference<Schedule.Schedule<unknown>>("@evently/store/RetryPolicy", {
  defaultValue: () => defaultSchedule
}) {}

/**
 * The schedule a `RetryPolicy` layer or `Effect.provideService` put in the current context, or `undefined` when none
 * did (then {@link RetryPolicy} yields the default).
 *
 * @since 0.2.0
 * @category accessors
 */
export const provided: Effect.Effect<Schedule.Schedule<unknown> | undefined> = Effect.map(
  Effect.context<never>(),
  (context) => Context.getOrUndefined(context, RetryPolicy)
)

/**
 * Provides a retry schedule to command handlers. Provided where a handler is built (its layer), it is that
 * handler's policy unless the handler has its own `retry` option; provided around one call, it overrides both for
 * that call (see `CommandHandler.make`). Each recurrence of the schedule is one more attempt (reload, decide, append).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (schedule: Schedule.Schedule<unknown>): Layer.Layer<never> => Layer.succeed(RetryPolicy, schedule)

/**
 * Never retries: a stale version fails the command after its first attempt.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerNoRetry: Layer.Layer<never> = layer(Schedule.recurs(0))
