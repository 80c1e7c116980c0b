/**
 * @since 0.1.0
 */
export * as DeciderSpec from "./DeciderSpec.ts"
export * as SubscriptionsSuite from "./SubscriptionsSuite.ts"
export * as TestDatabase from "./TestDatabase.ts"
export * as EventStoreContract from "./EventStoreContract.ts"
export * as CommandHandlerSuite from "./CommandHandlerSuite.ts"
export * as UnreadableRowsSuite from "./UnreadableRowsSuite.ts"
export * as Conflicts from "./Conflicts.ts"
