/**
 * `evently tail [--category c] [--type t] [--from beginning|end|position]`: the events as they commit, through an
 * ephemeral subscription (no checkpoint row, nothing left behind).
 */
import * as PgSubscriptions from "@evently/postgres/PgSubscriptions"
import * as Subscriptions from "@evently/store/Subscriptions"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as SqlClient from "effect/sql/SqlClient"
import { Command, Flag } from "effect/cli"
import { Json, parsePosition, withDatabase } from "../context.ts"
import * as Render from "../render.ts"
import { eventJson, eventLine } from "./streams.ts"

const categoriesFlag = Flag.String("category").pipe(
  Flag.withAlias("c"),
  Flag.withDescription("Only this category (repeat for several)"),
  Flag.atLeast(0)
)
const typesFlag = Flag.String("type").pipe(
  Flag.withAlias("t"),
  Flag.withDescription("Only this event type (repeat for several)"),
  Flag.atLeast(0)
)
const fromFlag = Flag.String("from").pipe(
  Flag.withDescription(
    "Where to start: beginning, end (the default: events committed from now on), or a position (the events after it)"
  ),
  Flag.withDefault("end")
)

// `end` is pinned here, before the ready line, so every event committed after that line is shown.
const startOf = Effect.fnUntraced(function* (from: string) {
  if (from === "beginning") return Subscriptions.Beginning
  if (from === "end") {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{ tx: string }>`select pg_snapshot_xmin(pg_current_snapshot())::text as tx`
    return Subscriptions.After(0n, BigInt(row!.tx))
  }
  return Subscriptions.After(yield* parsePosition(from))
})

export const tail = Command.make(
  "tail",
  { categories: categoriesFlag, types: typesFlag, from: fromFlag },
  ({ categories, from, types }) =>
    withDatabase(
      Effect.gen(function* () {
        const json = yield* Json
        const start = yield* startOf(from)
        const subscriptions = yield* PgSubscriptions.make({ reconnectDelay: "1 second" })
        const name = `evently-tail-${process.pid}`
        const batches = subscriptions.subscribe(name, {
          ephemeral: true,
          start,
          ...(categories.length > 0 ? { categories } : {}),
          ...(types.length > 0 ? { eventTypes: types } : {}),
          pollInterval: "1 second"
        })
        yield* Console.error(
          `tailing from ${from}${categories.length > 0 ? ` (${categories.join(", ")})` : ""}; Ctrl-C to stop`
        )
        yield* batches.pipe(
          Stream.runForEach((batch) =>
            Effect.andThen(
              Console.log(batch.events.map((e) => (json ? Render.toJson(eventJson(e)) : eventLine(e))).join("\n")),
              batch.commit
            )
          )
        )
      })
    )
).pipe(
  Command.withDescription(
    "Print events as they commit, live, without a checkpoint (an ephemeral subscription); --json prints one object per line"
  ),
  Command.withExamples([
    { command: "evently tail --category task", description: "New events of the task category" },
    { command: "evently tail --from beginning --json", description: "The whole log, then live, as JSON lines" }
  ])
)
