/**
 * @since 0.1.0
 */
export * as Cli from "./Cli.ts"
export * as EventlyConfig from "./EventlyConfig.ts"
export * as ExitCode from "./ExitCode.ts"
