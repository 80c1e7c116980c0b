/**
 * Rows damaged outside evently (a restore, a manual fix, another tool) on every read path of an `EventStore` over
 * SQL: each test appends through the store, damages one row with SQL, and checks that `readStream`, `readCategories`,
 * `readAll`, a `CommandHandler` and the Postgres subscriptions fail with an `UnreadableEvent` naming its position after the events before it,
 * never with a defect. The memory store cannot hold such rows, so this suite runs against the Postgres adapter on a
 * server and on PGlite.
 *
 * @since 0.2.0
 */
import { assert, layer } from "@effect/vitest"
import { PgSchema, PgSubscriptions } from "@evently/postgres"
import { CommandHandler, EventCodec, EventStore, Subscriptions } from "@evently/store"
import * as Cause from "effect/Cause"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import * as Stream from "effect/Stream"

/**
 * Options of the suite: the per-test timeout (default 60 seconds).
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  readonly timeout?: Duration.Input | undefined
}

/**
 * One way to damage a stored row: a name, the `UPDATE` that damages the row at `position` of the events table
 * `table`, and what the error's `reason` must match.
 *
 * @since 0.2.0
 * @category models
 */
export interface Damage {
  readonly name: string
  readonly update: (sql: SqlClient.SqlClient, table: string, position: bigint) => Effect.Effect<unknown, SqlError>
  readonly reason: RegExp
  /** The damage takes the row out of its stream or its category: reads of that one end without it. */
  readonly moves?: "stream" | "category" | undefined
  /** The damage moves the row to the end of its stream: a forward read meets it last, a backward read never. */
  readonly last?: boolean | undefined
}

/**
 * The damages the suite applies: metadata that is JSON `null`, a non-string header, an array, a string, a `null`
 * correlation id; a `recorded_at` of `infinity`, `-infinity` and past the year 275760; a stream version past 2^31 - 1;
 * a stream name that is not one; a category that is not the stream's.
 *
 * @since 0.2.0
 * @category constants
 */
export const damages: ReadonlyArray<Damage> = [
  {
    name: "metadata 'null'::jsonb",
    update: (sql, table, position) =>
      sql`update ${sql(table)} set metadata = 'null'::jsonb where position = ${position}`,
    reason: /^its metadata null is not/
  },
  {
    name: 'metadata {"headers":5}',
    update: (sql, table, position) =>
      sql`update ${sql(table)} set metadata = '{"headers": 5}'::jsonb where position = ${position}`,
    reason: /^its metadata \{"headers": 5\} is not/
  },
  {
    name: "metadata []",
    update: (sql, table, position) => sql`update ${sql(table)} set metadata = '[]'::jsonb where position = ${position}`,
    reason: /^its metadata \[\] is not/
  },
  {
    name: 'metadata "text"',
    update: (sql, table, position) =>
      sql`update ${sql(table)} set metadata = '"text"'::jsonb where position = ${position}`,
    reason: /^its metadata "text" is not/
  },
  {
    name: 'metadata {"correlationId":null}',
    update: (sql, table, position) =>
      sql`update ${sql(table)} set metadata = '{"correlationId": null}'::jsonb where position = ${position}`,
    reason: /^its metadata \{"correlationId": null\} is not/
  },
  {
    name: "recorded_at 'infinity'",
    update: (sql, table, position) =>
      sql`update ${sql(table)} set recorded_at = 'infinity'::timestamptz where position = ${position}`,
    reason: /^its recorded_at is not a date/
  },
  {
    name: "recorded_at '-infinity'",
    update: (sql, table, position) =>
      sql`update ${sql(table)} set recorded_at = '-infinity'::timestamptz where position = ${position}`,
    reason: /^its recorded_at is not a date/
  },
  {
    name: "recorded_at past the year 275760",
    update: (sql, table, position) =>
      sql`update ${sql(table)} set recorded_at = '275761-01-01T00:00:00Z'::timestamptz where position = ${position}`,
    reason: /^its recorded_at is not a date/
  },
  {
    name: "stream_version past 2^31 - 1",
    update: (sql, table, position) =>
      sql`update ${sql(table)} set stream_version = 5000000000 where position = ${position}`,
    reason: /^its stream version 5000000000 is outside 1 to 2147483647$/,
    last: true
  },
  {
    name: "a stream name without a category",
    update: (sql, table, position) => sql`update ${sql(table)} set stream = 'nodash' where position = ${position}`,
    reason: /^its stream name is invalid: /,
    moves: "stream"
  },
  {
    name: "a category that is not the stream's",
    update: (sql, table, position) =>
      sql`update ${sql(table)} set category = category || '_x' where position = ${position}`,
    reason: /^its category '\w+_x' is not its stream's category '\w+'$/,
    moves: "category"
  }
]

const unique = (): string => crypto.randomUUID().replaceAll("-", "").slice(0, 16)

const Noted = Schema.TaggedUnion({ Noted: { text: Schema.String } })
type Noted = typeof Noted.Type
const codec = EventCodec.make(Noted)
const decider = {
  initial: 0,
  evolve: (count: number, _event: Noted) => count + 1,
  decide: (command: { readonly text: string }, _count: number) =>
    Result.succeed([Noted.cases.Noted.make({ text: command.text })])
}

/** Runs a read to its end: the positions it delivered, and how it ended (a defect fails the test). */
const readUntilFailure = <E, R>(read: Stream.Stream<{ readonly position: bigint }, E, R>) =>
  Effect.gen(function* () {
    const delivered: Array<bigint> = []
    const exit = yield* Effect.exit(
      Stream.runForEach(read, (event) => Effect.sync(() => delivered.push(event.position)))
    )
    if (Exit.isFailure(exit) && Cause.hasDies(exit.cause)) assert.fail(`a defect: ${Cause.pretty(exit.cause)}`)
    return { delivered, error: Exit.isFailure(exit) ? Cause.findErrorOption(exit.cause) : undefined }
  })

const assertUnreadable = (
  error: unknown,
  expected: { readonly position: bigint; readonly stream: string; readonly reason: RegExp },
  where: string
) => {
  assert.instanceOf(error, EventStore.UnreadableEvent, where)
  const unreadable = error as EventStore.UnreadableEvent
  assert.strictEqual(unreadable._tag, "UnreadableEvent", where)
  assert.strictEqual(unreadable.position, expected.position, where)
  assert.strictEqual(unreadable.stream, expected.stream, where)
  assert.match(unreadable.reason, expected.reason, where)
  assert.strictEqual(
    unreadable.message,
    `Stored event at position ${expected.position} on stream '${expected.stream}' cannot be read: ${unreadable.reason}`,
    where
  )
}

/**
 * Registers the suite under `suiteName` for a layer that provides an `EventStore` and the `SqlClient` of the
 * database it stores into (migrated, with the default table names or those of `PgSchema.Tables` in the layer).
 *
 * @since 0.2.0
 * @category suites
 */
export const suite = <E>(
  suiteName: string,
  storeLayer: Layer.Layer<EventStore.EventStore | SqlClient.SqlClient, E>,
  options: Options = {}
): void =>
  layer(storeLayer, { excludeTestServices: true, timeout: options.timeout ?? "60 seconds" })(suiteName, (it) => {
    for (const damage of damages) {
      it.effect(`${damage.name}: every read path fails with UnreadableEvent after the events before it`, () =>
        Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          const tables = yield* PgSchema.Tables
          const store = yield* EventStore.EventStore
          const typed = EventCodec.typed(store, codec)
          const category = `u${unique()}`
          const stream = `${category}-1`
          const { positions } = yield* typed.append(
            stream,
            ["a", "b", "c"].map((text) => Noted.cases.Noted.make({ text })),
            { metadata: { correlationId: "c-1", causationId: "command-1" } }
          )
          const [first, second, third] = positions as [bigint, bigint, bigint]
          yield* damage.update(sql, tables.events, second)
          const [row] = yield* sql<{
            stream: string
          }>`select stream from ${sql(tables.events)} where position = ${second}`
          const expected = { position: second, stream: row!.stream, reason: damage.reason }

          const reads = [
            ["readStream", "stream", store.readStream(stream)],
            ["readStream, one row a page", "stream", store.readStream(stream, { batchSize: 1 })],
            ["readStream backward", "stream", store.readStream(stream, { direction: "backward" })],
            ["typed readStream", "stream", typed.readStream(stream)],
            ["readCategories", "category", store.readCategories([category])],
            ["readAll", "log", store.readAll({ after: first - 1n })],
            ["readAll, one row a page", "log", store.readAll({ after: first - 1n, batchSize: 1 })]
          ] as const
          for (const [where, scope, read] of reads) {
            const { delivered, error } = yield* readUntilFailure(read)
            const backward = where === "readStream backward"
            if (scope === damage.moves || (backward && damage.last === true)) {
              assert.deepStrictEqual(delivered, backward ? [third, first] : [first, third], where)
              assert.isUndefined(error, where)
              continue
            }
            const before = backward ? [third] : scope === "stream" && damage.last === true ? [first, third] : [first]
            assert.deepStrictEqual(delivered, before, where)
            assertUnreadable(error?._tag === "Some" ? error.value : undefined, expected, where)
          }
          if (damage.moves !== "stream") {
            const handler = yield* CommandHandler.make({ decider, codec, cache: false })
            const runs: ReadonlyArray<readonly [string, Effect.Effect<unknown, unknown>]> = [
              ["CommandHandler.load", handler.load(stream)],
              ["CommandHandler.handle", handler.handle(stream, { text: "d" })],
              ["CommandHandler.handle with a command id", handler.handle(stream, { text: "d" }, { commandId: "x" })],
              [
                "CommandHandler.handle with the command id already handled",
                handler.handle(stream, { text: "d" }, { commandId: "command-1" })
              ]
            ]
            for (const [where, run] of runs) {
              const exit = yield* Effect.exit(run)
              assert.isTrue(Exit.isFailure(exit), where)
              if (Exit.isFailure(exit)) {
                assert.isFalse(Cause.hasDies(exit.cause), `${where}: ${Cause.pretty(exit.cause)}`)
                const error = Cause.findErrorOption(exit.cause)
                assertUnreadable(error._tag === "Some" ? error.value : undefined, expected, where)
              }
            }
            // Nothing was appended on top of the damaged row.
            assert.strictEqual(yield* store.streamVersion(stream), 3)
          }
          if (damage.moves !== "category") {
            // A subscription over the category delivers the event before the row, then fails with its error: `run`
            // ends (no retry can fix it), and so does `subscribe`.
            const subscriptions = yield* Effect.provide(
              Effect.gen(function* () {
                return yield* Subscriptions.Subscriptions
              }),
              PgSubscriptions.layer()
            )
            const handled: Array<bigint> = []
            const ran = yield* Effect.exit(
              subscriptions.run(`u-run-${category}`, (event) => Effect.sync(() => handled.push(event.position)), {
                categories: [category]
              })
            )
            assert.isTrue(Exit.isFailure(ran), "run")
            if (Exit.isFailure(ran)) {
              assert.isFalse(Cause.hasDies(ran.cause), `run: ${Cause.pretty(ran.cause)}`)
              const error = Cause.findErrorOption(ran.cause)
              assertUnreadable(error._tag === "Some" ? error.value : undefined, expected, "run")
            }
            assert.deepStrictEqual(handled, [first], "run")
            // The event before the row was committed before the subscription failed.
            const [checkpoint] = (yield* subscriptions.status(`u-run-${category}`)).partitions
            assert.strictEqual(checkpoint?.checkpoint.position, first, "run's checkpoint")
            const { delivered, error } = yield* readUntilFailure(
              subscriptions
                .subscribe(`u-sub-${category}`, { categories: [category] })
                .pipe(Stream.flatMap((batch) => Stream.fromIterable(batch.events)))
            )
            assert.deepStrictEqual(delivered, [first], "subscribe")
            assertUnreadable(error?._tag === "Some" ? error.value : undefined, expected, "subscribe")
          }
        })
      )
    }

    it.effect("an append retried with the ids of a damaged row still returns its first result", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const tables = yield* PgSchema.Tables
        const store = yield* EventStore.EventStore
        const stream = `u${unique()}-1`
        const events = [{ type: "Noted", data: { text: "a" }, eventId: crypto.randomUUID() }]
        const first = yield* store.append(stream, events)
        yield* sql`update ${sql(tables.events)}
          set metadata = 'null'::jsonb, recorded_at = 'infinity'::timestamptz
          where position = ${first.positions[0]!}`
        const again = yield* store.append(stream, events)
        assert.deepStrictEqual(again, first)
      })
    )
  })
