/**
 * @since 0.1.0
 */
export * as ContainerApi from "./ContainerApi.ts"

/**
 * @since 0.1.0
 */
export * as ContainerIndex from "./ContainerIndex.ts"

/**
 * @since 0.1.0
 */
export * as Problem from "./Problem.ts"

/**
 * @since 0.2.0
 */
export * as CommandApi from "./CommandApi.ts"

/**
 * @since 0.1.0
 */
export * as Metrics from "./Metrics.ts"
