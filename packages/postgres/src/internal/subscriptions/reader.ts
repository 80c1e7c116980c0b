/**
 * The reader of a session: pages of events after the cursor, in `(transaction_id, position)` order, below the oldest
 * transaction still running (so that no row can commit behind the cursor later), woken by LISTEN/NOTIFY with a poll
 * as the safety net.
 */
import type { PgClient } from "@effect/sql-pg"
import type * as EventStore from "@evently/store/EventStore"
import * as SubscriptionLifecycle from "@evently/store/SubscriptionLifecycle"
import type * as Subscriptions from "@evently/store/Subscriptions"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import type * as SqlClient from "effect/sql/SqlClient"
import type * as Statement from "effect/sql/Statement"
import * as Stream from "effect/Stream"
import * as EventRow from "../eventRow.ts"
import type * as PgSchema from "../../PgSchema.ts"
import type { Committer } from "./committer.ts"
import type { SessionConnection } from "./connection.ts"
import { type Cursor, isAfter, type metricAttributes, storage, toCheckpoint } from "./cursor.ts"
import { lagEvents } from "./metrics.ts"

/** A LISTEN's notifications: a wake-up each. */
export type Wake = Queue.Dequeue<unknown, unknown>

/**
 * LISTENs on the events table's channel until the scope closes, or `undefined` when the worker polls (`notify:
 * false`, no `PgClient`, or LISTEN failed: said in the log). LISTEN before the first read, so no commit between the
 * read and the LISTEN goes unnoticed.
 */
export const listen = Effect.fnUntraced(function* (
  pg: Option.Option<PgClient.PgClient>,
  t: PgSchema.TableNames,
  name: string,
  opts: Subscriptions.SubscribeOptions | undefined,
  poll: Duration.Duration
) {
  if (opts?.notify === false) return undefined
  if (Option.isNone(pg)) {
    yield* Effect.logInfo(`Subscription '${name}': no PgClient to LISTEN with; polling every ${Duration.format(poll)}`)
    return undefined
  }
  return yield* pg.value.listen(t.events).pipe(
    Effect.tapError((error) =>
      Effect.logWarning(`Subscription '${name}': LISTEN failed (${error.message}); polling instead`)
    ),
    Effect.option,
    Effect.map(Option.getOrUndefined)
  )
})

/** What the reader of a session reads with. */
export interface ReaderSettings {
  readonly sql: SqlClient.SqlClient
  readonly t: PgSchema.TableNames
  readonly connection: SessionConnection
  readonly committer: Committer
  /** The filter and partition conditions (see `filterFragment`). */
  readonly where: Statement.Fragment
  /** What to select, for the client the reads go through (see `EventRow.Columns`). */
  readonly columns: EventRow.Columns
  readonly batchSize: number
  readonly poll: Duration.Duration
  readonly wake: Wake | undefined
  /**
   * What to wait for after a wake-up, before reading: a session reading from a streaming replica waits there until
   * the replica has replayed the commit that notified (see `replica.ts`). Not after a poll.
   */
  readonly afterWake?: Effect.Effect<void, Subscriptions.SubscriptionStorageError> | undefined
  readonly attributes: ReturnType<typeof metricAttributes>
  /** The batch of `events`, read up to `to`. */
  readonly batchOf: (events: ReadonlyArray<EventStore.RecordedEvent>, to: Cursor) => Subscriptions.Batch
}

/** What a page or a count of the events after a cursor needs. */
export type PageSettings = Pick<ReaderSettings, "sql" | "t" | "connection" | "where" | "batchSize" | "columns">

/** The events after `cursor` that no running transaction can still commit behind, one page. */
export const readPage = (settings: PageSettings, cursor: Cursor) => {
  const { sql, t } = settings
  return settings.connection.values(
    "read",
    sql`select ${settings.columns.fragment}
      from ${sql(t.events)} e
      where (e.transaction_id, e.position) > (${String(cursor.tx)}::xid8, ${cursor.pos})
        and e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
        ${settings.where}
      order by e.transaction_id, e.position
      limit ${settings.batchSize}`
  )
}

/**
 * How many matching events lie after `cursor` below the oldest running transaction: the events a session starting
 * there has to catch up with (those that commit later come after all of them in the reader's order).
 */
export const countBehind = (settings: PageSettings, cursor: Cursor) => {
  const { sql, t } = settings
  return settings.connection
    .query<{ behind: number }>(
      "count behind",
      sql`select count(*)::int as behind
        from ${sql(t.events)} e
        where (e.transaction_id, e.position) > (${String(cursor.tx)}::xid8, ${cursor.pos})
          and e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
          ${settings.where}`
    )
    .pipe(Effect.map((rows) => rows[0]!.behind))
}

const waitForWake = (settings: ReaderSettings) => {
  const { afterWake, wake } = settings
  return wake === undefined
    ? Effect.sleep(settings.poll)
    : Effect.timeoutOption(Queue.take(wake), settings.poll).pipe(
        // A burst of notifications is one wake-up.
        Effect.tap(() => Queue.clear(wake)),
        Effect.mapError(storage("listen")),
        Effect.flatMap((woken) => (Option.isSome(woken) && afterWake !== undefined ? afterWake : Effect.void))
      )
}

/**
 * The batches after `initial` (telling the session signals where it starts, and when a read finds nothing), until the committer is poisoned (then the stream fails with its reason) or a row
 * cannot be read (the events before it are delivered first).
 */
export const batches = (
  settings: ReaderSettings,
  initial: Cursor
): Stream.Stream<Subscriptions.Batch, Subscriptions.SubscriptionError> => {
  const { committer } = settings
  const next = Effect.fnUntraced(function* (cursor: Cursor) {
    const signals = yield* SubscriptionLifecycle.SessionSignals
    while (true) {
      const poisoned = committer.poisoned()
      if (poisoned !== undefined) return yield* poisoned
      const rows = yield* readPage(settings, cursor)
      if (rows.length === 0) {
        yield* Metric.update(Metric.withAttributes(lagEvents, settings.attributes), 0)
        yield* signals.readEmpty(toCheckpoint(cursor))
        yield* waitForWake(settings)
        continue
      }
      const { events, unreadable } = EventRow.decodeRows(rows, settings.columns.binary)
      if (events.length === 0) {
        // Give the batches handed out before this row (up to 10 s) to commit, so that the checkpoint ends at the
        // last readable event before the subscription fails with the row's error.
        yield* Effect.sync(() => committer.poisoned() !== undefined || !isAfter(cursor, committer.committed())).pipe(
          Effect.repeat({ until: (settled: boolean) => settled, schedule: Schedule.spaced("20 millis") }),
          Effect.timeoutOption("10 seconds")
        )
        return yield* unreadable!
      }
      const last = events[events.length - 1]!
      const to: Cursor = { tx: last.transactionId, pos: last.position }
      return [[settings.batchOf(events, to)], Option.some(to)] as const
    }
  })
  const positioned = Effect.gen(function* () {
    const signals = yield* SubscriptionLifecycle.SessionSignals
    if (signals.active) yield* signals.positioned(toCheckpoint(initial), yield* countBehind(settings, initial))
  })
  // One page read ahead: the next page's statement runs while the consumer handles and commits this one (the
  // committer and the lifecycle's empty-read signal are built for batches read ahead of their commit).
  return Stream.paginate(initial, (cursor: Cursor) =>
    Effect.tapError(next(cursor), (error) => Effect.sync(() => committer.readerFailed(error)))
  ).pipe(Stream.onStart(positioned), Stream.buffer({ capacity: 1 }))
}
