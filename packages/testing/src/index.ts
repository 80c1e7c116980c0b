/**
 * @since 0.1.0
 */
export * as TestDatabase from "./TestDatabase.ts"
export * as EventStoreContract from "./EventStoreContract.ts"
