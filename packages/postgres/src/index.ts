/**
 * @since 0.1.0
 */
export * as PgConfig from "./PgConfig.ts"
export * as PgEventStore from "./PgEventStore.ts"
export * as PgSchema from "./PgSchema.ts"
export * as PgSubscriptions from "./PgSubscriptions.ts"
export * as PgSnapshots from "./PgSnapshots.ts"
export * as PgTransaction from "./PgTransaction.ts"
export * as PgOperations from "./PgOperations.ts"
export * as PgProjections from "./PgProjections.ts"
export * as PgReplica from "./PgReplica.ts"
