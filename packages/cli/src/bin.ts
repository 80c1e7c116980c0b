#!/usr/bin/env node
/**
 * The `evently` executable: `Cli.run` on the process's arguments, ending with its exit code.
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node-shared/NodeRuntime"
import * as Effect from "effect/Effect"
import * as Cli from "./Cli.ts"

Cli.run(process.argv.slice(2)).pipe(
  Effect.provide(Cli.layerNode),
  Effect.tap((code) =>
    Effect.sync(() => {
      process.exitCode = code
    })
  ),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
