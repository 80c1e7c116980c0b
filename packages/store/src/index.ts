/**
 * @since 0.1.0
 */
export * as EventCodec from "./EventCodec.ts"
export * as EventStore from "./EventStore.ts"
export * as ExpectedVersion from "./ExpectedVersion.ts"
export * as StreamName from "./StreamName.ts"
export * as Subscriptions from "./Subscriptions.ts"
