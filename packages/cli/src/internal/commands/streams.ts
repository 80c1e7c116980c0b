/**
 * `evently streams [--category c]` and `evently read <stream> [--backward] [--limit n]`.
 */
import * as PgEventStore from "@evently/postgres/PgEventStore"
import * as PgOperations from "@evently/postgres/PgOperations"
import * as EventStore from "@evently/store/EventStore"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { Argument, Command, Flag } from "effect/cli"
import * as ExitCode from "../../ExitCode.ts"
import { Json, withDatabase } from "../context.ts"
import * as Render from "../render.ts"

const limitFlag = (fallback: number) =>
  Flag.Int("limit").pipe(
    Flag.withAlias("n"),
    Flag.withDescription("At most this many"),
    Flag.filter(
      (n) => n >= 1,
      (n) => `--limit must be at least 1, not ${n}`
    ),
    Flag.withDefault(fallback)
  )

export const streams = Command.make(
  "streams",
  {
    category: Flag.String("category").pipe(
      Flag.withAlias("c"),
      Flag.withDescription("Only this category"),
      Flag.optional
    ),
    limit: limitFlag(1000)
  },
  ({ category, limit }) =>
    withDatabase(
      Effect.gen(function* () {
        const rows = yield* PgOperations.streams({ category: Option.getOrUndefined(category), limit })
        if (yield* Json) return yield* Render.printJson(rows)
        yield* Console.log(
          Render.table(
            rows,
            [
              { header: "STREAM", cell: (r) => r.stream },
              { header: "CATEGORY", cell: (r) => r.category },
              { header: "VERSION", cell: (r) => String(r.version), align: "right" }
            ],
            "No streams."
          )
        )
      })
    )
).pipe(Command.withDescription("The streams (name, category, version), in name order"))

/** One event as a table row or a JSON object. */
export const eventJson = (e: EventStore.RecordedEvent) => ({
  position: e.position,
  transactionId: e.transactionId,
  stream: e.stream,
  version: e.streamVersion,
  type: e.type,
  schemaVersion: e.schemaVersion,
  eventId: e.eventId,
  recordedAt: e.recordedAt,
  data: e.data,
  metadata: e.metadata
})

/** One event on one line, for people. */
export const eventLine = (e: EventStore.RecordedEvent): string =>
  `${String(e.position).padStart(8)}  ${Render.date(new Date(e.recordedAt.epochMilliseconds))}  ${Render.printable(e.stream)}@${e.streamVersion}  ${Render.printable(e.type)}  ${Render.excerpt(Render.toJson(e.data), 120)}`

export const read = Command.make(
  "read",
  {
    stream: Argument.String("stream").pipe(Argument.withDescription("The stream's name, category-id")),
    backward: Flag.Boolean("backward").pipe(
      Flag.withAlias("b"),
      Flag.withDescription("Newest first"),
      Flag.withDefault(false)
    ),
    limit: limitFlag(100)
  },
  ({ backward, limit, stream }) =>
    withDatabase(
      Effect.gen(function* () {
        const store = yield* PgEventStore.make()
        const events = yield* store.readStream(stream, { direction: backward ? "backward" : "forward", limit }).pipe(
          Stream.runCollect,
          Effect.mapError((error) =>
            error._tag === "InvalidStreamName" || error._tag === "InvalidReadOptions"
              ? ExitCode.fail(ExitCode.Usage, error.message)
              : error
          )
        )
        if (events.length === 0 && (yield* store.streamVersion(stream)) === 0) {
          return yield* ExitCode.fail(ExitCode.NotFound, `No stream '${stream}'`)
        }
        if (yield* Json) return yield* Render.printJson(events.map(eventJson))
        yield* Console.log(events.map(eventLine).join("\n"))
      })
    )
).pipe(Command.withDescription("The events of one stream, oldest first (or newest first with --backward)"))
