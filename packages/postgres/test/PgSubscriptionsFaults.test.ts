import { assert, layer } from "@effect/vitest"
import { PgSchema } from "@evently/postgres"
import { type EventStore, Subscriptions } from "@evently/store"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as SqlClient from "effect/sql/SqlClient"
import type * as SqlError from "effect/sql/SqlError"
import * as Faults from "./faults.ts"
import { insertEvents, layerSubscriptions } from "./helpers.ts"

// Issue 15: whatever fails in a subscription (its lock, its reads, the handler's own SQL, its checkpoint), and however
// far it has read ahead, every event is handled (at least once; exactly once with `transactional: true`), in order per
// stream, the checkpoint ends on the last event, and `run` goes on: a lost connection, a serialization failure or a
// statement timeout is transient, never the handler's domain error.

const streams = 4
const batchSize = 10

interface Context {
  /** The subscription's name, its category, the stem of its streams and of its projection table. */
  readonly name: string
  /** The application name of the subscription's own client (so its backends, and only they, can be killed). */
  readonly app: string
  /** The positions appended so far, in order. */
  readonly positions: ReadonlyArray<bigint>
  /** Appends `count` events, one a transaction, round-robin over the streams. */
  readonly append: (count: number) => Effect.Effect<void, unknown, SqlClient.SqlClient>
  /** Starts the subscription (once; the scenario starts it after `fault` if `fault` did not). */
  readonly start: Effect.Effect<void, unknown, SqlClient.SqlClient>
  /** Waits until the subscription has caught up; fails at once if it ended. */
  readonly caughtUp: Effect.Effect<void, unknown, SqlClient.SqlClient>
  /** Runs `effect` while the subscription runs; fails at once if it ends. */
  readonly running: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** Kills every backend of the subscription's client when one waits on a lock in `statement`, twice. */
  readonly killWhenBlocked: (statement: string) => Effect.Effect<void, unknown, SqlClient.SqlClient>
}

interface Scenario {
  readonly name: string
  readonly transactional: boolean
  /** Events appended before the subscription starts. */
  readonly preload: number
  /** Session settings of every connection of the subscription's client. */
  readonly startupParameters?: Readonly<Record<string, string>>
  /** The handler's own SQL, on the subscription's client, before it records (and projects) the event. */
  readonly handlerSql?: (
    sql: SqlClient.SqlClient,
    event: EventStore.RecordedEvent,
    context: Context
  ) => Effect.Effect<unknown, SqlError.SqlError>
  /** The fault: arms fault points, starts the subscription, locks, kills, appends. */
  readonly fault: (context: Context) => Effect.Effect<void, unknown, SqlClient.SqlClient | Subscriptions.Subscriptions>
}

/**
 * Runs a subscription (`Stop` policy, batches of 10, read-ahead) on a client of its own through `fault`, then checks
 * the promise: every event handled, per-stream order, the checkpoint on the last event, the subscription still
 * running, and an event appended after the fault handled too.
 */
const scenario = (options: Scenario) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const subs = yield* Subscriptions.Subscriptions
    const name = options.name
    const app = `faults_${name}`
    const projection = `${name}_projection`
    yield* Faults.install
    yield* sql`create table ${sql(projection)} (
      seq bigint generated always as identity,
      position bigint primary key,
      stream text not null,
      version int not null,
      copies int not null default 1
    )`
    const positions: Array<bigint> = []
    const handled: Array<Faults.Handled> = []
    let fiber: Fiber.Fiber<never, unknown> | undefined

    const context: Context = {
      name,
      app,
      positions,
      append: (count) =>
        Effect.forEach(
          Array.from({ length: count }, (_, i) => i),
          () =>
            Effect.map(insertEvents(`${name}-${positions.length % streams}`, 1), (added) => {
              positions.push(...added)
            }),
          { discard: true }
        ),
      start: Effect.gen(function* () {
        if (fiber !== undefined) return
        const client = yield* Faults.ownClient(app, options.startupParameters)
        fiber = yield* Effect.gen(function* () {
          const own = yield* Subscriptions.Subscriptions
          const ownSql = yield* SqlClient.SqlClient
          return yield* own.run(
            name,
            (event) =>
              Effect.gen(function* () {
                if (options.handlerSql !== undefined) yield* options.handlerSql(ownSql, event, context)
                if (options.transactional) {
                  yield* ownSql`insert into ${ownSql(projection)} as p (position, stream, version)
                    values (${event.position}, ${event.stream}, ${event.streamVersion})
                    on conflict (position) do update set copies = p.copies + 1`
                }
                handled.push(Faults.handledOf(event))
              }),
            { categories: [name], batchSize, pollInterval: "100 millis", transactional: options.transactional }
          )
        }).pipe(Effect.provide(client), Effect.forkChild)
      }),
      caughtUp: Effect.suspend(() => Faults.caughtUp(subs, name, app, fiber!)),
      running: (effect) => Effect.suspend(() => Faults.whileRunning(name, fiber!, effect)),
      killWhenBlocked: (statement) =>
        Effect.suspend(() => Faults.whileRunning(name, fiber!, Faults.killWhenBlocked(app, statement)))
    }

    const verify = Effect.gen(function* () {
      const events = (yield* sql<{ stream: string; version: number; tx: string; position: bigint }>`
          select stream, stream_version as version, transaction_id::text as tx, position
          from evently_events where category = ${name} order by transaction_id, position`).map((row) => ({
        ...row,
        tx: BigInt(row.tx),
        position: BigInt(row.position)
      }))
      assert.strictEqual(events.length, positions.length)
      const seen = new Set(handled.map((event) => event.position))
      assert.deepStrictEqual(
        events.filter((event) => !seen.has(event.position)).map((event) => event.position),
        [],
        "events never handled"
      )
      assert.deepStrictEqual(Faults.orderViolations(handled), [], "per-stream order in delivery")
      if (options.transactional) {
        const rows = (yield* sql<{ position: bigint; stream: string; version: number; copies: number }>`
            select position, stream, version, copies from ${sql(projection)} order by seq`).map((row) => ({
          ...row,
          position: BigInt(row.position)
        }))
        const projected = new Set(rows.map((row) => row.position))
        assert.deepStrictEqual(
          events.filter((event) => !projected.has(event.position)).map((event) => event.position),
          [],
          "events never projected"
        )
        assert.deepStrictEqual(
          rows.filter((row) => row.copies !== 1).map((row) => [row.position, row.copies]),
          [],
          "events projected more than once"
        )
        const last = new Map<string, number>()
        const inversions: Array<string> = []
        for (const row of rows) {
          if ((last.get(row.stream) ?? 0) >= row.version) {
            inversions.push(`${row.stream} version ${row.version} after ${last.get(row.stream)}`)
          }
          last.set(row.stream, row.version)
        }
        assert.deepStrictEqual(inversions, [], "per-stream order of the projection")
      }
      const final = events[events.length - 1]!
      const status = yield* subs.status(name)
      assert.deepStrictEqual(
        status.partitions.map((partition) => partition.checkpoint),
        [{ transactionId: final.tx, position: final.position }],
        "the checkpoint is the last event's"
      )
    })

    yield* context.append(options.preload)
    yield* options.fault(context)
    yield* context.start
    yield* context.caughtUp
    yield* verify
    assert.isUndefined(fiber!.pollUnsafe(), "the subscription is still running")
    yield* context.append(1)
    yield* context.caughtUp
    yield* verify
    yield* Fiber.interrupt(fiber!)
  })

const modes = [
  { mode: "plain", transactional: false },
  { mode: "transactional", transactional: true }
] as const

layer(layerSubscriptions(), { excludeTestServices: true, timeout: "60 seconds" })("PgSubscriptions faults", (it) => {
  for (const { mode, transactional } of modes) {
    for (const times of [1, 3]) {
      it.effect(`${mode}: the checkpoint update fails ${times}x at the batch ending at event 30, with read-ahead`, () =>
        Effect.gen(function* () {
          const name = `cp_${mode}_${times}`
          const point = `checkpoint:${name}`
          yield* scenario({
            name,
            transactional,
            preload: 60,
            // From the update to the 30th event's position on, the next `times` checkpoint updates fail.
            fault: (context) => Faults.arm(point, context.positions[29]!, times)
          })
          assert.strictEqual(yield* Faults.fired(point), times)
        })
      )
    }

    it.effect(`${mode}: its connections are killed while it holds the partition lock`, () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const t = yield* PgSchema.Tables
        yield* scenario({
          name: `kill_lock_${mode}`,
          transactional,
          preload: 60,
          // The checkpoints table locked: the query right after the partition lock (loading the checkpoint) waits.
          fault: (context) =>
            Faults.holding(
              [sql`lock table ${sql(t.checkpoints)} in access exclusive mode`],
              Effect.gen(function* () {
                yield* context.start
                yield* context.running(Faults.blocked(context.app))
                assert.isTrue(yield* Faults.holdsAdvisoryLock(context.app), "it holds the partition lock")
                yield* context.killWhenBlocked(t.checkpoints)
              })
            )
        })
      })
    )

    it.effect(`${mode}: its connections are killed while it reads`, () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const t = yield* PgSchema.Tables
        yield* scenario({
          name: `kill_read_${mode}`,
          transactional,
          preload: 30,
          // Caught up on 30 events, then the events table locked: its next read waits; 30 more come after.
          fault: (context) =>
            Effect.gen(function* () {
              yield* context.start
              yield* context.caughtUp
              yield* Faults.holding(
                [sql`lock table ${sql(t.events)} in access exclusive mode`],
                context.killWhenBlocked(t.events)
              )
              yield* context.append(30)
            })
        })
      })
    )

    it.effect(`${mode}: its connections are killed while the handler's SQL runs`, () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const key = 15_000 + (transactional ? 1 : 0)
        yield* scenario({
          name: `kill_handler_${mode}`,
          transactional,
          preload: 60,
          // The handler's SQL for the 25th event waits on an advisory lock the test holds.
          handlerSql: (own, event, context) =>
            event.position === context.positions[24]
              ? own`select pg_advisory_xact_lock_shared(15015, ${key}::int)`
              : Effect.void,
          fault: (context) =>
            Faults.holding(
              [sql`select pg_advisory_xact_lock(15015, ${key}::int)`],
              Effect.andThen(context.start, context.killWhenBlocked("pg_advisory_xact_lock_shared"))
            )
        })
      })
    )

    it.effect(`${mode}: its connections are killed while it updates the checkpoint`, () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const t = yield* PgSchema.Tables
        const name = `kill_checkpoint_${mode}`
        yield* scenario({
          name,
          transactional,
          preload: 30,
          // Caught up on 30 events, then its checkpoint row locked FOR UPDATE: the commit of the next batch waits.
          // The lock takes a transaction id, and the reader reads no further than the oldest running one: the 30
          // new events go in a transaction that takes its id before the lock's and commits after it.
          fault: (context) =>
            Effect.gen(function* () {
              yield* context.start
              yield* context.caughtUp
              const inserted = yield* Deferred.make<void>()
              const release = yield* Deferred.make<void>()
              const writer = yield* sql
                .withTransaction(
                  context
                    .append(30)
                    .pipe(
                      Effect.andThen(Deferred.succeed(inserted, undefined)),
                      Effect.andThen(Deferred.await(release))
                    )
                )
                .pipe(Effect.forkChild)
              yield* Deferred.await(inserted)
              yield* Faults.holding(
                [sql`select 1 from ${sql(t.checkpoints)} where subscription = ${name} for update`],
                Effect.gen(function* () {
                  yield* Deferred.succeed(release, undefined)
                  yield* Fiber.join(writer)
                  yield* context.killWhenBlocked("update")
                })
              )
            })
        })
      })
    )

    it.effect(`${mode}: the handler's SQL fails with a serialization failure 3x under the Stop policy`, () =>
      Effect.gen(function* () {
        const name = `serialization_${mode}`
        const point = `serialization:${name}`
        yield* scenario({
          name,
          transactional,
          preload: 60,
          handlerSql: (own, event) => own`select fault_serialization(${point}, ${event.position})`,
          fault: (context) => Faults.arm(point, context.positions[24]!, 3)
        })
        assert.strictEqual(yield* Faults.fired(point), 3)
      })
    )

    it.effect(`${mode}: the handler's SQL hits the statement timeout 2x under the Stop policy`, () =>
      Effect.gen(function* () {
        const name = `timeout_${mode}`
        const point = `sleep:${name}`
        yield* scenario({
          name,
          transactional,
          preload: 60,
          startupParameters: { statement_timeout: "400ms" },
          handlerSql: (own, event) => own`select fault_sleep(${point}, ${event.position}, 5)`,
          fault: (context) => Faults.arm(point, context.positions[24]!, 2)
        })
        assert.strictEqual(yield* Faults.fired(point), 2)
      })
    )
  }
})
