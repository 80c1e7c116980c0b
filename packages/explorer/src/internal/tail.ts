/**
 * The live tail as Server-Sent Events: the newest events first, then every event committed after them, read with
 * `PgOperations.readPage` every `interval` (each SSE message is one event as JSON, `event: unreadable` for a row
 * that does not decode). The tail follows positions, so an event committed late with a lower position than one
 * already shown is not shown: it is a view, not a subscription.
 */
import * as PgOperations from "@evently/postgres/PgOperations"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"
import type * as SqlClient from "effect/sql/SqlClient"
import type * as SqlError from "effect/sql/SqlError"
import * as ExplorerQueries from "../ExplorerQueries.ts"

const pageSize = 200

const message = (row: PgOperations.PageRow): string => {
  if (Result.isFailure(row)) {
    const { position, stream, reason } = row.failure
    return `event: unreadable\ndata: ${JSON.stringify({ position: String(position), stream, reason })}\n\n`
  }
  const e = row.success
  const view: ExplorerQueries.EventView = {
    position: String(e.position),
    transactionId: String(e.transactionId),
    stream: e.stream,
    category: e.category,
    version: e.streamVersion,
    eventId: e.eventId,
    type: e.type,
    schemaVersion: e.schemaVersion,
    data: e.data,
    metadata: e.metadata,
    recordedAt: DateTime.formatIso(e.recordedAt)
  }
  return `data: ${JSON.stringify(view)}\n\n`
}

/** The tail's messages: the newest `initial` events, then the new ones as they commit. */
export const messages = (options: {
  readonly initial: number
  readonly interval: Duration.Input
}): Stream.Stream<string, SqlError.SqlError, SqlClient.SqlClient> =>
  Stream.unwrap(
    Effect.gen(function* () {
      const latest = yield* ExplorerQueries.latest(options.initial)
      const start = latest.length === 0 ? 0n : BigInt(latest[latest.length - 1]!.position)
      const first = latest.map((e) => `data: ${JSON.stringify(e)}\n\n`)
      const follow = Stream.paginate({ after: start, wait: false }, ({ after, wait }) =>
        Effect.gen(function* () {
          if (wait) yield* Effect.sleep(options.interval)
          const page = yield* PgOperations.readPage(after, pageSize)
          const last = page.length === 0 ? after : page[page.length - 1]!.position
          return [page.map((p) => message(p.row)), Option.some({ after: last, wait: page.length < pageSize })] as const
        })
      )
      return Stream.concat(Stream.fromArray([": evently explorer tail\n\n", ...first]), follow)
    })
  )
