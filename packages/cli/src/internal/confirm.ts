/**
 * Confirmation before a change: `--yes` skips it; without a terminal to ask on the command refuses.
 */
import * as Effect from "effect/Effect"
import { Flag, Prompt, TerminalCapabilities } from "effect/cli"
import * as ExitCode from "../ExitCode.ts"

/** `--yes`: do it without asking. */
export const yesFlag = Flag.Boolean("yes").pipe(
  Flag.withAlias("y"),
  Flag.withDescription("Do it without asking for confirmation"),
  Flag.withDefault(false)
)

/**
 * Succeeds when `--yes` was given or the user answers yes to `question`; fails with `ExitCode.Refused` otherwise,
 * and at once when stdin or stdout is not a terminal.
 */
export const confirm = (question: string, given: boolean) =>
  Effect.gen(function* () {
    if (given) return
    const { canPrompt } = yield* TerminalCapabilities.TerminalCapabilities
    if (!canPrompt) {
      return yield* ExitCode.fail(
        ExitCode.Refused,
        `Refused: ${question} needs confirmation and there is no terminal to ask on; pass --yes to do it anyway`
      )
    }
    const answer = yield* Prompt.run(Prompt.Confirm({ message: `${question}?` })).pipe(
      Effect.catchTag("QuitError", () => Effect.succeed(false))
    )
    if (!answer) return yield* ExitCode.fail(ExitCode.Refused, "Refused: not confirmed, nothing changed")
  })
