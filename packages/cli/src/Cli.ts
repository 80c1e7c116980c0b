/**
 * The `evently` command: its command tree on `effect/cli`, and `run`, which parses a command line, runs it and
 * answers with the process's exit code (see `ExitCode`). The `evently` bin is `run` on Node's services.
 *
 * @since 0.1.0
 */
import * as NodeChildProcessSpawner from "@effect/platform-node-shared/NodeChildProcessSpawner"
import * as NodeFileSystem from "@effect/platform-node-shared/NodeFileSystem"
import * as NodePath from "@effect/platform-node-shared/NodePath"
import * as NodeStdio from "@effect/platform-node-shared/NodeStdio"
import * as NodeTerminal from "@effect/platform-node-shared/NodeTerminal"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { CliError, Command } from "effect/cli"
import { createRequire } from "node:module"
import * as ExitCode from "./ExitCode.ts"
import { diagram } from "./internal/commands/diagram.ts"
import { explore } from "./internal/commands/explore.ts"
import { migrate } from "./internal/commands/migrate.ts"
import { parked } from "./internal/commands/parked.ts"
import { rebase } from "./internal/commands/rebase.ts"
import { rebuild } from "./internal/commands/rebuild.ts"
import { status } from "./internal/commands/status.ts"
import { read, streams } from "./internal/commands/streams.ts"
import { tail } from "./internal/commands/tail.ts"
import { verify } from "./internal/commands/verify.ts"
import { ConfigPath, Json, Url } from "./internal/context.ts"

/**
 * This package's version, as `evently --version` prints it.
 *
 * @since 0.1.0
 * @category constants
 */
export const version: string = (createRequire(import.meta.url)("../package.json") as { readonly version: string })
  .version

const root = Command.make("evently").pipe(
  Command.withDescription(
    "Operate an evently system on Postgres: migrations, subscription status, live tail, streams, parked events, rebases, rebuilds, codec checks, machine diagrams. Connects with --url, else DATABASE_URL, else the PG* variables."
  ),
  Command.withSubcommands([migrate, status, tail, streams, read, parked, rebase, rebuild, verify, diagram, explore]),
  Command.withGlobalFlags([Url, ConfigPath, Json])
)

const codeOf = (error: unknown): number => {
  if (error instanceof ExitCode.CommandFailed) return error.code
  if (CliError.isCliError(error)) return ExitCode.Usage
  return ExitCode.Failed
}

const report = (error: unknown): Effect.Effect<void> => {
  // effect/cli has printed its own errors (with the help text).
  if (CliError.isCliError(error)) return Effect.void
  const text = error instanceof Error ? error.message : String(error)
  return Console.error(`evently: ${text}`)
}

/**
 * Runs the command line `args` (without `node` and the script), printing on stdout and stderr, and succeeds with
 * the exit code the process should end with: never fails.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (args: ReadonlyArray<string>): Effect.Effect<number, never, Command.Environment> =>
  Command.runWith(root, { version })(args).pipe(
    Effect.as(ExitCode.Ok),
    Effect.catchCause((cause) => {
      if (Cause.hasInterruptsOnly(cause)) return Effect.succeed(ExitCode.Interrupted)
      const error = Cause.squash(cause)
      return Effect.as(report(error), codeOf(error))
    })
  )

/**
 * What `run` needs on Node: its file system, path, stdio, terminal and child processes.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerNode: Layer.Layer<Command.Environment> = Layer.provideMerge(
  NodeChildProcessSpawner.layer,
  Layer.mergeAll(NodeFileSystem.layer, NodePath.layer, NodeStdio.layer, NodeTerminal.layer)
)
