/**
 * The Postgres adapter of the `EventStore` port, on `effect/sql`: one statement and one round trip per append, for
 * any number of events, with every expected version checked atomically in that statement. Appends issued at the same
 * time by concurrent fibers (outside a caller's transaction) are group-committed: written together in one statement
 * and one transaction, so they share one round trip and one WAL flush, each keeping its own outcome.
 *
 * @since 0.1.0
 */
import { PgClient } from "@effect/sql-pg"
import { EventStore, ExpectedVersion, StreamName } from "@evently/store"
import type * as Config from "effect/Config"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type * as Migrator from "effect/sql/Migrator"
import * as SqlClient from "effect/sql/SqlClient"
import type * as Statement from "effect/sql/Statement"
import type * as SqlError from "effect/sql/SqlError"
import * as Stream from "effect/Stream"
import * as Append from "./internal/append.ts"
import {
  type Columns,
  columnCount,
  columnsOf,
  decodeRows,
  fromValues,
  probe,
  type Values
} from "./internal/eventRow.ts"
import * as GroupCommitQueue from "./internal/groupCommit.ts"
import * as Notifier from "./internal/notifier.ts"
import * as PgConfig from "./PgConfig.ts"
import * as PgSchema from "./PgSchema.ts"

/**
 * Options of the Postgres event store. `notify` (default `true`): each append that wrote something also runs
 * `pg_notify(<events table name>, <category>)`, which is what subscriptions LISTEN for: in its own statement, delivered
 * when its transaction commits, when it is the store's only append in flight or runs in a caller's transaction;
 * otherwise in a small statement of its own right after its commit, shared by the categories of the appends that
 * committed meanwhile. PostgreSQL lets only one notifying transaction commit at a time, so concurrent appends that each
 * notified in their statement would commit one after the other.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly notify?: boolean | undefined
  readonly groupCommit?: GroupCommit | false | undefined
}

/**
 * Bounds of group commit (on by default; `groupCommit: false` turns it off). Concurrent appends outside a caller's
 * transaction wait in a queue; when no batch is being written, the queue takes up to `maxAppends` appends (default 64)
 * holding up to `maxEvents` events (default 100) into one statement. A lone append goes out at once, in its caller's
 * fiber: no timer, no hand-over, no added latency, and interrupting it interrupts its statement; under load a batch is
 * whatever arrived while the previous one was written, so batches grow with the load. Up to `maxBatchesInFlight`
 * batches (default 2) are written at once, but a second one starts only when the first was full (a bound left appends
 * waiting) or is late (twice the typical batch time: waiting, for example, on a stream row that a caller's open
 * transaction has locked). So one stuck batch never holds up the others, while fewer, larger batches do less work per
 * event. An append of `maxEvents` events or more, which already shares its commit among its own events, is not
 * coalesced and takes no slot: it goes out at once in its caller's fiber, as with group commit off, beside what is in
 * flight. Two appends to one stream are never in flight together: the second waits for the first's batch and sees its
 * result. An append inside `sql.withTransaction` is never coalesced: it runs in that transaction.
 *
 * @since 0.1.0
 * @category models
 */
export interface GroupCommit {
  readonly maxAppends?: number | undefined
  readonly maxEvents?: number | undefined
  readonly maxBatchesInFlight?: number | undefined
}

/**
 * How many appends each group-commit batch held (a batch of 1 is a lone append). Updated in the `MetricRegistry` of
 * the context the store was built in.
 *
 * @since 0.1.0
 * @category metrics
 */
export const batchSizes = Metric.histogram("evently_append_batch_size", {
  description: "Appends written together by one group-commit statement",
  boundaries: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
})

/**
 * How many group-commit batches were written (each one statement, one transaction).
 *
 * @since 0.1.0
 * @category metrics
 */
export const flushes = Metric.counter("evently_append_flushes", {
  description: "Group-commit batches written",
  incremental: true
})

/**
 * How many times a combined statement failed for a reason that may belong to one of its appends (a unique
 * violation, a deadlock, …) and was split in two to isolate it.
 *
 * @since 0.1.0
 * @category metrics
 */
export const splits = Metric.counter("evently_append_batch_splits", {
  description: "Group-commit batches split to isolate a failing append",
  incremental: true
})

interface AppendRow {
  readonly version: number | null
  readonly actual: number
  readonly positions: ReadonlyArray<bigint>
  /** How many appends the statement that decided this one wrote (1 unless group-committed). */
  readonly batch: number
}

/** What the append statement (alone or combined) says of one append, before the follow-up checks. */
type Outcome = AppendRow | "duplicate"

interface Queued {
  readonly stream: string
  readonly eventIds: ReadonlyArray<string>
  readonly append: Append.BatchAppend
}

/** Failures that may belong to one append of a combined statement; anything else (a lost connection) is shared. */
const isolatable = (error: SqlError.SqlError): boolean =>
  error.reason._tag !== "ConnectionError" &&
  error.reason._tag !== "AuthenticationError" &&
  error.reason._tag !== "AuthorizationError"

const storeError = (operation: string) => (cause: SqlError.SqlError) => new EventStore.StoreError({ operation, cause })

interface PageState<S> {
  readonly state: S
  readonly remaining: number
  /** A row of the last page did not decode: the events before it were delivered, the next pull fails with it. */
  readonly unreadable: EventStore.UnreadableEvent | undefined
}

type Step<S> = Effect.Effect<
  readonly [ReadonlyArray<EventStore.RecordedEvent>, Option.Option<PageState<S>>],
  EventStore.StoreError | EventStore.UnreadableEvent
>

/**
 * Keyset paging: each page starts after the last row of the previous one, so memory stays one page. A row that
 * cannot become a recorded event ends the stream with its `UnreadableEvent`, after the events before it.
 */
const page = <S>(
  sql: SqlClient.SqlClient,
  operation: string,
  start: S,
  limit: number,
  batchSize: number,
  query: (
    state: S,
    size: number,
    columns: Statement.Fragment
  ) => Effect.Effect<ReadonlyArray<Values>, SqlError.SqlError>,
  next: (last: EventStore.RecordedEvent) => S
): Stream.Stream<EventStore.RecordedEvent, EventStore.StoreError | EventStore.UnreadableEvent> =>
  Stream.paginate(
    { state: start, remaining: limit, unreadable: undefined } as PageState<S>,
    ({ remaining, state, unreadable }): Step<S> => {
      if (unreadable !== undefined) return Effect.fail(unreadable)
      if (remaining <= 0) return Effect.succeed([[], Option.none()])
      const size = Math.min(batchSize, remaining)
      const read = Effect.andThen(
        probe(sql),
        Effect.suspend(() => {
          const columns = columnsOf(sql)
          return Effect.map(query(state, size, columns.fragment), (rows) => ({ rows, binary: columns.binary }))
        })
      )
      return Effect.flatMap(Effect.mapError(read, storeError(operation)), ({ binary, rows }): Step<S> => {
        const { events, unreadable: damaged } = decodeRows(rows, binary)
        const last = events[events.length - 1]
        if (damaged !== undefined) {
          return last === undefined
            ? Effect.fail(damaged)
            : Effect.succeed([events, Option.some({ state, remaining, unreadable: damaged })] as const)
        }
        const more =
          rows.length < size || last === undefined
            ? Option.none()
            : Option.some({ state: next(last), remaining: remaining - rows.length, unreadable: undefined })
        return Effect.succeed([events, more] as const)
      })
    }
  )

/**
 * Builds the Postgres event store on the ambient `SqlClient`: an append inside a caller's `sql.withTransaction`
 * joins that transaction; other appends are group-committed unless `groupCommit: false` (see {@link GroupCommit}). Table names come from `PgSchema.Tables`; run `PgSchema.migrate` first.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (options: Options = {}) {
  const sql = yield* SqlClient.SqlClient
  const tables = yield* PgSchema.Tables
  const notify = options.notify ?? true

  const currentVersion = (stream: string) =>
    Effect.map(
      sql<{
        readonly version: number
      }>`select version::int4 as version from ${sql(tables.streams)} where stream = ${stream}::text`,
      (rows) => rows[0]?.version ?? 0
    )

  /**
   * The stored events carrying the batch's ids, with the size of the append that stored each: the events of its
   * stream with its key and its writer (`xmin`, the transaction that inserted the row). The key alone is not enough:
   * an append whose transaction took its id before the stream's previous writer committed shares that writer's key.
   */
  const storedWithIds = (prepared: EventStore.PreparedAppend) =>
    Effect.andThen(
      probe(sql),
      Effect.suspend(() => storedWithColumns(prepared, columnsOf(sql)))
    )
  const storedWithColumns = (prepared: EventStore.PreparedAppend, columns: Columns) =>
    Effect.map(
      sql`
        select ${columns.fragment},
          (select count(*)::int4 from ${sql(tables.events)} b
            where b.stream = e.stream and b.transaction_id = e.transaction_id and b.xmin = e.xmin) as batch
        from unnest(${prepared.events.map((event) => event.eventId)}::uuid[]) as i (id)
        join ${sql(tables.events)} e on e.event_id = i.id`.values,
      // Only what idempotency compares: a damaged `metadata` or `recorded_at` does not stop a retried append.
      (rows): ReadonlyArray<EventStore.StoredEvent> =>
        rows.map((values) => {
          const row = fromValues(values)
          return {
            eventId: row.eventid,
            stream: row.stream,
            streamVersion: Number(row.version),
            type: row.type,
            schemaVersion: row.schemaversion,
            data: columns.binary ? row.data : (JSON.parse(row.data as string) as unknown),
            position: BigInt(row.position),
            transactionId: BigInt(row.txid),
            batchSize: values[columnCount] as number
          }
        })
    ).pipe(Effect.mapError(storeError("append (idempotency check)")))

  /**
   * The one-append statement, in the caller's transaction when there is one (`inTransaction`: then it looks the event
   * ids up before writing, so that an id stored already does not abort that transaction; see `Append.statement`).
   */
  const writeOne = (
    append: Append.BatchAppend,
    inTransaction: boolean,
    notifyInStatement: boolean
  ): Effect.Effect<Outcome, EventStore.StoreError> =>
    Append.statement(
      sql,
      tables,
      Append.parameters(append.prepared, append.recordedAt, tables.events, notifyInStatement, inTransaction)
    ).pipe(
      Effect.map((rows): Outcome => {
        const row = rows[0]!
        return row.duplicate
          ? "duplicate"
          : { version: row.version, actual: row.actual ?? 0, positions: row.positions ?? [], batch: 1 }
      }),
      // Two concurrent appends of the same new event ids: the loser's insert hits the unique index.
      Effect.catchReason("SqlError", "UniqueViolation", (reason, error) =>
        reason.constraint === `${tables.events}_event_id_key`
          ? Effect.succeed("duplicate" as const)
          : Effect.fail(error)
      ),
      Effect.mapError(storeError("append"))
    )

  /**
   * Writes a batch of appends to distinct streams: alone, with the one-append statement; together, with the combined
   * statement. When the combined statement fails for a reason that may belong to one append, nothing was written:
   * the batch is split in two and each half written on its own, down to the culprit, which gets its own error (or,
   * for a retried `Any`/`StreamExists` append, which the combined statement does not look up, its original result).
   */
  const writeStatement = (
    batch: ReadonlyArray<Queued>,
    notifyInStatement: boolean
  ): Effect.Effect<ReadonlyArray<Exit.Exit<Outcome, EventStore.StoreError>>> => {
    if (batch.length === 1) {
      return Effect.map(Effect.exit(writeOne(batch[0]!.append, false, notifyInStatement)), (exit) => [exit])
    }
    return Append.batchStatement(
      sql,
      tables,
      Append.batchParameters(
        batch.map((queued) => queued.append),
        tables.events,
        notifyInStatement
      )
    ).pipe(
      Effect.map((rows) => {
        const place = new Map(batch.map((queued, index) => [queued.stream, index]))
        const outcomes: Array<Outcome | undefined> = batch.map(() => undefined)
        const written = batch.map((): Array<Append.BatchRow> => [])
        for (const row of rows) {
          const index = row.stream === null ? undefined : place.get(row.stream)
          if (index === undefined) continue
          if (row.position !== null) written[index]!.push(row)
          else {
            outcomes[index] = row.duplicate
              ? "duplicate"
              : { version: null, actual: row.actual ?? 0, positions: [], batch: batch.length }
          }
        }
        return batch.map((queued, index): Exit.Exit<Outcome, EventStore.StoreError> => {
          const events = written[index]!
          if (events.length > 0) {
            if (events.length !== queued.eventIds.length) {
              return Exit.die(new Error(`group commit: append ${index + 1} wrote ${events.length} of its events`))
            }
            events.sort((a, b) => a.version! - b.version!)
            const version = events[events.length - 1]!.version!
            return Exit.succeed({
              version,
              actual: version - events.length,
              positions: events.map((event) => BigInt(event.position!)),
              batch: batch.length
            })
          }
          const outcome = outcomes[index]
          return outcome === undefined
            ? Exit.die(new Error(`group commit: the combined statement returned no row for append ${index + 1}`))
            : Exit.succeed(outcome)
        })
      }),
      Effect.catch((error) => {
        if (!isolatable(error)) return Effect.succeed(batch.map(() => Exit.fail(storeError("append")(error))))
        const half = Math.ceil(batch.length / 2)
        return Effect.andThen(
          Metric.update(splits, 1),
          Effect.map(
            Effect.all([writeBatch(batch.slice(0, half)), writeBatch(batch.slice(half))]),
            ([first, second]) => [...first, ...second]
          )
        )
      })
    )
  }

  /** This store's append statements in flight outside a caller's transaction. */
  let inFlight = 0
  const notifier = Notifier.make({
    context: yield* Effect.context<never>(),
    send: (categories) => sql`select pg_notify(${tables.events}::text, c.category)
      from unnest(${categories}::text[]) as c (category)`
  })

  /**
   * Writes a batch (see `writeStatement`) and NOTIFYs the categories it wrote: inside its statement when no other
   * statement of this store is in flight, otherwise right after its commit, through the notifier (see
   * `internal/notifier.ts`), so that concurrent appends do not commit one at a time.
   */
  const writeBatch = (
    batch: ReadonlyArray<Queued>
  ): Effect.Effect<ReadonlyArray<Exit.Exit<Outcome, EventStore.StoreError>>> =>
    Effect.suspend(() => {
      const notifyInStatement = notify && inFlight === 0
      inFlight++
      return writeStatement(batch, notifyInStatement).pipe(
        Effect.ensuring(Effect.sync(() => inFlight--)),
        Effect.tap((exits) => {
          if (!notify || notifyInStatement) return Effect.void
          const written = batch.filter((_, index) => {
            const exit = exits[index]!
            return Exit.isSuccess(exit) && exit.value !== "duplicate" && exit.value.version !== null
          })
          return notifier.signal(written.map((queued) => queued.append.prepared.category))
        })
      )
    })

  const bounds = options.groupCommit === false ? undefined : options.groupCommit
  const queue =
    options.groupCommit === false
      ? undefined
      : GroupCommitQueue.make<Queued, Outcome, EventStore.StoreError>({
          context: yield* Effect.context<never>(),
          bounds: {
            maxAppends: Math.max(1, Math.floor(bounds?.maxAppends ?? 64)),
            maxEvents: Math.max(1, Math.floor(bounds?.maxEvents ?? 100)),
            maxBatchesInFlight: Math.max(1, Math.floor(bounds?.maxBatchesInFlight ?? 2))
          },
          metrics: { batchSizes, flushes },
          run: writeBatch
        })

  /** Coalesced with concurrent appends, unless group commit is off or a caller's transaction is open. */
  const write = (append: Append.BatchAppend): Effect.Effect<Outcome, EventStore.StoreError> =>
    Effect.flatMap(Effect.serviceOption(sql.transactionService), (transaction) =>
      transaction._tag === "Some"
        ? writeOne(append, true, notify)
        : queue === undefined
          ? Effect.flatMap(writeBatch([{ stream: append.prepared.stream, eventIds: [], append }]), (exits) => exits[0]!)
          : queue.submit({
              stream: append.prepared.stream,
              eventIds: append.prepared.events.map((event) => event.eventId),
              append
            })
    )

  const appendUntraced = Effect.fnUntraced(function* (
    stream: string,
    events: ReadonlyArray<EventStore.NewEvent>,
    appendOptions?: EventStore.AppendOptions
  ) {
    const prepared = yield* EventStore.prepareAppend(stream, events, appendOptions)
    yield* EventStore.annotateAppendSpan(prepared)
    if (prepared.events.length === 0) {
      const actual = yield* Effect.mapError(currentVersion(prepared.stream), storeError("append"))
      if (!ExpectedVersion.matches(prepared.expected, actual)) {
        return yield* new EventStore.WrongExpectedVersion({
          stream: prepared.stream,
          expected: prepared.expected,
          actual
        })
      }
      return { stream: prepared.stream, version: actual, positions: [] }
    }
    const recordedAt = new Date(yield* Clock.currentTimeMillis)
    const outcome = yield* write({ prepared, recordedAt })
    if (outcome === "duplicate") return yield* EventStore.replayAppend(prepared, yield* storedWithIds(prepared))
    yield* Effect.annotateCurrentSpan("batch.size", outcome.batch)
    if (outcome.version !== null) {
      return { stream: prepared.stream, version: outcome.version, positions: outcome.positions }
    }
    if (!ExpectedVersion.matches(prepared.expected, outcome.actual)) {
      return yield* new EventStore.WrongExpectedVersion({
        stream: prepared.stream,
        expected: prepared.expected,
        actual: outcome.actual
      })
    }
    // The statement's snapshot predates the writer that beat us (it committed while we waited for the stream row's
    // lock), so the version it saw still meets the expectation. That writer may have been a concurrent retry of this
    // very batch (then this is an idempotent success); otherwise a fresh read gives the actual version.
    const stored = yield* storedWithIds(prepared)
    if (stored.length > 0) return yield* EventStore.replayAppend(prepared, stored)
    const actual = yield* Effect.mapError(currentVersion(prepared.stream), storeError("append"))
    return yield* new EventStore.WrongExpectedVersion({ stream: prepared.stream, expected: prepared.expected, actual })
  })

  /**
   * The append span, without the call-site stack trace that `Effect.fn` captures on every call: taking it cost 18 µs of
   * a 500 µs append (a 10-event append, one writer), and the caller's own span says where the append came from.
   */
  const append = (
    stream: string,
    events: ReadonlyArray<EventStore.NewEvent>,
    appendOptions?: EventStore.AppendOptions
  ) =>
    Effect.withSpan(appendUntraced(stream, events, appendOptions), "PgEventStore.append", { captureStackTrace: false })

  const readStream = (
    stream: string,
    readOptions?: EventStore.ReadStreamOptions
  ): Stream.Stream<
    EventStore.RecordedEvent,
    StreamName.InvalidStreamName | EventStore.InvalidReadOptions | EventStore.StoreError | EventStore.UnreadableEvent
  > =>
    Stream.unwrap(
      Effect.map(EventStore.prepareReadStream(stream, readOptions), (read) => {
        const backward = read.direction === "backward"
        return page(
          sql,
          "readStream",
          read.from ?? (backward ? EventStore.maxReadNumber : 1),
          read.limit,
          read.batchSize,
          (version, size, columns) =>
            backward
              ? sql`select ${columns} from ${sql(tables.events)} e
                  where e.stream = ${read.stream}::text and e.stream_version <= ${version}::int8
                  order by e.stream_version desc limit ${size}::int4`.values
              : sql`select ${columns} from ${sql(tables.events)} e
                  where e.stream = ${read.stream}::text and e.stream_version >= ${version}::int8
                  order by e.stream_version limit ${size}::int4`.values,
          (last) => (backward ? last.streamVersion - 1 : last.streamVersion + 1)
        )
      })
    )

  const readCategories = (
    categories: ReadonlyArray<string>,
    readOptions?: EventStore.ReadLogOptions
  ): Stream.Stream<
    EventStore.RecordedEvent,
    StreamName.InvalidStreamName | EventStore.InvalidReadOptions | EventStore.StoreError | EventStore.UnreadableEvent
  > =>
    Stream.unwrap(
      Effect.map(EventStore.prepareReadCategories(categories, readOptions), (read) =>
        read.categories.length === 0
          ? Stream.empty
          : page(
              sql,
              "readCategories",
              read.after,
              read.limit,
              read.batchSize,
              (after, size, columns) =>
                sql`select ${columns} from (
                  select k.position from unnest(${read.categories}::text[]) as c (name)
                  cross join lateral (
                    select position from ${sql(tables.events)}
                    where category = c.name and position > ${after}::int8
                    order by position limit ${size}::int4
                  ) k
                  order by k.position limit ${size}::int4
                ) k join ${sql(tables.events)} e using (position)
                order by position`.values,
              (last) => BigInt(last.position)
            )
      )
    )

  const readAll = (
    readOptions?: EventStore.ReadLogOptions
  ): Stream.Stream<
    EventStore.RecordedEvent,
    EventStore.InvalidReadOptions | EventStore.StoreError | EventStore.UnreadableEvent
  > =>
    Stream.unwrap(
      Effect.map(EventStore.prepareReadAll(readOptions), (read) =>
        page(
          sql,
          "readAll",
          read.after,
          read.limit,
          read.batchSize,
          (after, size, columns) =>
            sql`select ${columns} from (
              select position from ${sql(tables.events)}
              where position > ${after}::int8 order by position limit ${size}::int4
            ) k join ${sql(tables.events)} e using (position)
            order by position`.values,
          (last) => BigInt(last.position)
        )
      )
    )

  const streamVersion = Effect.fn("PgEventStore.streamVersion")(function* (stream: string) {
    const name = yield* StreamName.parse(stream)
    yield* Effect.annotateCurrentSpan("stream", name)
    return yield* Effect.mapError(currentVersion(name), storeError("streamVersion"))
  })

  return EventStore.EventStore.of({ append, readStream, readCategories, readAll, streamVersion })
})

/**
 * The Postgres event store on the `SqlClient` in context (see {@link make}); it does not run migrations.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<EventStore.EventStore, never, SqlClient.SqlClient> =>
  Layer.effect(EventStore.EventStore, make(options))

/**
 * The Postgres event store with its own connection pool to the server named by `DATABASE_URL` / `PG*` (see
 * `PgConfig.url`); runs the migrations when it is built.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Options = {}
): Layer.Layer<EventStore.EventStore, Config.ConfigError | SqlError.SqlError | Migrator.MigrationError> =>
  layer(options).pipe(Layer.provide(PgSchema.layerMigrate), Layer.provide(PgClient.layerConfig({ url: PgConfig.url })))
