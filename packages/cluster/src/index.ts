/**
 * @since 0.1.0
 */
export * as ClusterHandlers from "./ClusterHandlers.ts"
export * as ClusterRunner from "./ClusterRunner.ts"
export * as ClusterSubscriptions from "./ClusterSubscriptions.ts"
export * as StreamEntity from "./StreamEntity.ts"
