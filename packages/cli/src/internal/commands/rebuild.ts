/**
 * `evently rebuild <projection>`: waits for the Projection API (issue 20).
 */
import * as Effect from "effect/Effect"
import { Argument, Command } from "effect/cli"
import * as ExitCode from "../../ExitCode.ts"

export const rebuild = Command.make(
  "rebuild",
  {
    projection: Argument.String("projection").pipe(
      Argument.withDescription("The projection's name in the config module")
    )
  },
  ({ projection }) => Effect.fail(ExitCode.fail(ExitCode.Failed, `rebuild '${projection}': not available yet`))
).pipe(Command.withDescription("Rebuild a projection from the beginning, with a progress bar"))
