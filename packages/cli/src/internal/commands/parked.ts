/**
 * `evently parked list|retry|drop <subscription> [--id n]`.
 *
 * Retrying needs the handler, which only the application has, so `retry` redelivers: the partition's checkpoint
 * moves back to just before the oldest retried event and the parked rows are deleted; the worker (running or next
 * started) handles the event again, and the partition's later events too (at-least-once).
 */
import * as PgOperations from "@evently/postgres/PgOperations"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { Argument, Command, Flag } from "effect/cli"
import * as ExitCode from "../../ExitCode.ts"
import { confirm, yesFlag } from "../confirm.ts"
import { Json, withDatabase } from "../context.ts"
import * as Render from "../render.ts"

const subscriptionArg = Argument.String("subscription").pipe(Argument.withDescription("The subscription's name"))
const idFlag = Flag.Int("id").pipe(
  Flag.withDescription("Only the parked row with this id (default: all)"),
  Flag.optional
)

// The rows the confirmation names: the change then acts on exactly these ids, never on rows parked while it asked.
const selected = Effect.fnUntraced(function* (name: string, id: Option.Option<number>) {
  const rows = yield* PgOperations.parked(name)
  const chosen = Option.isSome(id) ? rows.filter((row) => row.id === BigInt(id.value)) : rows
  if (chosen.length === 0) {
    return yield* ExitCode.fail(
      ExitCode.NotFound,
      Option.isSome(id)
        ? `Subscription '${name}' has no parked row ${id.value}`
        : `Subscription '${name}' has no parked events`
    )
  }
  return chosen
})

const list = Command.make("list", { subscription: subscriptionArg }, ({ subscription }) =>
  withDatabase(
    Effect.gen(function* () {
      const rows = yield* PgOperations.parked(subscription)
      if (yield* Json) return yield* Render.printJson(rows)
      yield* Console.log(
        Render.table(
          rows,
          [
            { header: "ID", cell: (r) => String(r.id), align: "right" },
            { header: "PART", cell: (r) => String(r.partition), align: "right" },
            { header: "POSITION", cell: (r) => String(r.position), align: "right" },
            { header: "STREAM", cell: (r) => r.stream },
            { header: "TYPE", cell: (r) => r.type },
            { header: "PARKED AT", cell: (r) => Render.date(r.parkedAt) },
            { header: "ERROR", cell: (r) => Render.excerpt(r.error, 80) }
          ],
          `Subscription '${subscription}' has no parked events.`
        )
      )
    })
  )
).pipe(Command.withDescription("The events the subscription parked (a Skip policy), oldest first, with their errors"))

const retry = Command.make(
  "retry",
  { subscription: subscriptionArg, id: idFlag, yes: yesFlag },
  ({ id, subscription, yes }) =>
    withDatabase(
      Effect.gen(function* () {
        const rows = yield* selected(subscription, id)
        yield* confirm(
          `Redeliver ${rows.length} parked event(s) of '${subscription}' (its checkpoint moves back to just before the oldest of them; the events after it are delivered again too)`,
          yes
        )
        const rewinds = yield* PgOperations.retryParked(
          subscription,
          rows.map((row) => row.id)
        )
        if (yield* Json) return yield* Render.printJson(rewinds)
        yield* Console.log(
          rewinds
            .map(
              (r) =>
                `partition ${r.partition}: checkpoint at position ${r.checkpoint.position}, ${r.redeliver} event(s) to deliver again (parked rows ${r.retried.join(", ")} removed)`
            )
            .join("\n")
        )
      })
    )
).pipe(
  Command.withDescription(
    "Redeliver parked events: move the partition's checkpoint back to just before the oldest of them and delete their parked rows; the worker handles them (and the partition's later events) again"
  )
)

const drop = Command.make(
  "drop",
  { subscription: subscriptionArg, id: idFlag, yes: yesFlag },
  ({ id, subscription, yes }) =>
    withDatabase(
      Effect.gen(function* () {
        const rows = yield* selected(subscription, id)
        yield* confirm(`Delete ${rows.length} parked row(s) of '${subscription}' for good`, yes)
        const dropped = yield* PgOperations.dropParked(
          subscription,
          rows.map((row) => row.id)
        )
        if (yield* Json) return yield* Render.printJson({ dropped })
        yield* Console.log(`deleted ${dropped.length} parked row(s) of '${subscription}'`)
      })
    )
).pipe(Command.withDescription("Delete parked rows: the events stay in the log, the subscription will not see them"))

export const parked = Command.make("parked").pipe(
  Command.withDescription("The events a subscription parked: list, retry (redeliver) or drop them"),
  Command.withSubcommands([list, retry, drop])
)
