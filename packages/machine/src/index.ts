/**
 * @since 0.1.0
 */
export * as Accumulate from "./Accumulate.ts"

/**
 * @since 0.1.0
 */
export * as Arbitraries from "./Arbitraries.ts"

/**
 * @since 0.1.0
 */
export * as Decider from "./Decider.ts"

/**
 * @since 0.1.0
 */
export * as Graph from "./Graph.ts"

/**
 * @since 0.1.0
 */
export * as Machine from "./Machine.ts"

/**
 * @since 0.1.0
 */
export * as Rule from "./Rule.ts"
