/**
 * @since 0.1.0
 */
export * as EventCodec from "./EventCodec.ts"
export * as EventStore from "./EventStore.ts"
export * as Faults from "./Faults.ts"
export * as ExpectedVersion from "./ExpectedVersion.ts"
export * as StreamName from "./StreamName.ts"
export * as Subscriptions from "./Subscriptions.ts"
export * as CommandHandler from "./CommandHandler.ts"
export * as Correlation from "./Correlation.ts"
export * as RetryPolicy from "./RetryPolicy.ts"
export * as SnapshotPolicy from "./SnapshotPolicy.ts"
export * as Snapshots from "./Snapshots.ts"
export * as KeyedLock from "./KeyedLock.ts"
export * as Telemetry from "./Telemetry.ts"
export * as SubscriptionLifecycle from "./SubscriptionLifecycle.ts"
export * as Projection from "./Projection.ts"
export * as ReplayBoundary from "./ReplayBoundary.ts"
