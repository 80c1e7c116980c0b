/**
 * `evently explore [--host h] [--port p]`: the explorer (`@evently/explorer`) on this database, with the config
 * module's machines and projections (which the page can rebuild, given the token), until Ctrl-C. Read-only unless `EVENTLY_EXPLORER_TOKEN` is set (never a flag: a command line is
 * visible to every user of the machine).
 */
import * as Explorer from "@evently/explorer/Explorer"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { Command, Flag } from "effect/cli"
import * as ExitCode from "../../ExitCode.ts"
import { config, withDatabase } from "../context.ts"

export const explore = Command.make(
  "explore",
  {
    host: Flag.String("host").pipe(
      Flag.withDescription("Address to listen on (default 127.0.0.1: this machine only)"),
      Flag.withDefault(Explorer.defaultHost)
    ),
    port: Flag.Int("port").pipe(
      Flag.withDescription("Port to listen on (0: any free port)"),
      Flag.filter(
        (port) => port >= 0 && port <= 65535,
        (port) => `--port must be from 0 to 65535, not ${port}`
      ),
      Flag.withDefault(4000)
    )
  },
  ({ host, port }) =>
    withDatabase(
      Effect.gen(function* () {
        const { machines, projections } = yield* config
        // Set but empty is not set: the explorer has no actions then, and the line below says read-only.
        const token = yield* Config.option(Config.String("EVENTLY_EXPLORER_TOKEN")).pipe(
          Effect.map(Option.filter((value) => value !== "")),
          Effect.mapError((error) => ExitCode.fail(ExitCode.Usage, error.message))
        )
        const url = yield* Explorer.serve({
          host,
          port,
          machines,
          projections,
          token: Option.getOrUndefined(token)
        }).pipe(
          Effect.mapError((error) =>
            ExitCode.fail(ExitCode.Unavailable, `Cannot listen on ${host}:${port}: ${error.message}`)
          )
        )
        const mode = Option.isSome(token) ? "actions need the token" : "read-only"
        yield* Console.log(`evently explorer on ${url.href} (${mode}); Ctrl-C stops it`)
        return yield* Effect.never
      }).pipe(Effect.scoped)
    )
).pipe(
  Command.withDescription("Open the explorer, a web page on this database's streams, events, consumers and machines")
)
