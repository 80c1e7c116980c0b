/**
 * The Postgres subscriptions' metrics (re-exported by `PgSubscriptions`).
 */
import * as Metric from "effect/Metric"

/** Events committed to the checkpoint, by subscription and partition. */
export const eventsCommitted = Metric.counter("evently_subscription_events_committed", {
  description: "Events whose checkpoint a subscription committed"
})

/** The position of a subscription partition's checkpoint. */
export const checkpointPosition = Metric.gauge("evently_subscription_checkpoint_position", {
  description: "The position of the subscription partition's checkpoint"
})

/** Matching events a subscription partition has not handled yet. */
export const lagEvents = Metric.gauge("evently_subscription_lag_events", {
  description: "Matching events not yet handled by the subscription partition"
})

/** The age in seconds of the oldest event a subscription partition has not handled. */
export const lagSeconds = Metric.gauge("evently_subscription_lag_seconds", {
  description: "Age of the oldest unhandled event of the subscription partition"
})
