/**
 * @since 0.1.0
 */
export * as Explorer from "./Explorer.ts"
export * as ExplorerQueries from "./ExplorerQueries.ts"
export * as MachinePath from "./MachinePath.ts"
