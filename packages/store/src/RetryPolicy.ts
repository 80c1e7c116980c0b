/**
 * How a command handler retries when the stream changed between its read and its append (a
 * `WrongExpectedVersion`): a `Schedule` in a context reference, replaced by a layer.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
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
 * Provides a retry schedule to the command handlers built or run under it. Each recurrence of the schedule is one
 * more attempt (reload, decide, append).
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
