/**
 * @since 0.1.0
 */
export * as Database from "./Database.ts"

/**
 * @since 0.1.0
 */
export * as PgliteClient from "./PgliteClient.ts"
