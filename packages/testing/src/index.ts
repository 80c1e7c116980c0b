/**
 * @since 0.1.0
 */
export * as TestDatabase from "./TestDatabase.ts"

/**
 * @since 0.1.0
 */
export * as DeciderSpec from "./DeciderSpec.ts"
