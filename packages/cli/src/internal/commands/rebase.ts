/**
 * `evently rebase <subscription> beginning|end|after <position> [--yes]`.
 */
import * as PgOperations from "@evently/postgres/PgOperations"
import * as PgSubscriptions from "@evently/postgres/PgSubscriptions"
import * as Subscriptions from "@evently/store/Subscriptions"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { Argument, Command } from "effect/cli"
import * as ExitCode from "../../ExitCode.ts"
import { confirm, yesFlag } from "../confirm.ts"
import { Json, parsePosition, withDatabase } from "../context.ts"
import * as Render from "../render.ts"

const startOf = Effect.fnUntraced(function* (where: "beginning" | "end" | "after", position: Option.Option<string>) {
  if (where !== "after") {
    if (Option.isSome(position)) {
      return yield* ExitCode.fail(ExitCode.Usage, `'${where}' takes no position (only 'after <position>' does)`)
    }
    return where === "beginning" ? Subscriptions.Beginning : Subscriptions.End
  }
  if (Option.isNone(position)) return yield* ExitCode.fail(ExitCode.Usage, "'after' needs a position: after <position>")
  return Subscriptions.After(yield* parsePosition(position.value))
})

export const rebase = Command.make(
  "rebase",
  {
    subscription: Argument.String("subscription").pipe(Argument.withDescription("The subscription's name")),
    where: Argument.Literals("where", ["beginning", "end", "after"]).pipe(
      Argument.withDescription(
        "beginning (handle everything again), end (only what commits from now on), after <position>"
      )
    ),
    position: Argument.String("position").pipe(
      Argument.withDescription("With 'after': the position"),
      Argument.optional
    ),
    yes: yesFlag
  },
  ({ position, subscription, where, yes }) =>
    withDatabase(
      Effect.gen(function* () {
        const start = yield* startOf(where, position)
        const partitions = (yield* PgOperations.status).partitions.filter((p) => p.subscription === subscription)
        if (partitions.length === 0) {
          return yield* ExitCode.fail(ExitCode.NotFound, `No subscription '${subscription}' (it has no checkpoint)`)
        }
        const active = partitions.filter((p) => p.worker !== undefined).map((p) => p.partition)
        const target = where === "after" ? `after position ${Option.getOrThrow(position)}` : `the ${where}`
        const warning =
          active.length > 0 ? ` (a worker is running partition(s) ${active.join(", ")}: stop it first)` : ""
        yield* confirm(
          `Move every checkpoint of '${subscription}' (${partitions.map((p) => `partition ${p.partition} at ${p.checkpoint.position}`).join(", ")}) to ${target}${warning}`,
          yes
        )
        yield* PgSubscriptions.rebase(subscription, start)
        const after = (yield* PgOperations.status).partitions.filter((p) => p.subscription === subscription)
        if (yield* Json) return yield* Render.printJson({ subscription, partitions: after })
        yield* Console.log(
          after
            .map((p) => `partition ${p.partition}: checkpoint at position ${p.checkpoint.position}, lag ${p.lagEvents}`)
            .join("\n")
        )
      })
    )
).pipe(
  Command.withDescription(
    "Move a subscription's checkpoints (every partition) to the beginning, the end, or after a position, and stamp them with this cluster; asks first unless --yes"
  ),
  Command.withExamples([
    { command: "evently rebase tasks-by-assignee beginning", description: "Handle the whole log again" },
    { command: "evently rebase mailer after 12345 --yes", description: "Skip to after position 12345, no question" }
  ])
)
