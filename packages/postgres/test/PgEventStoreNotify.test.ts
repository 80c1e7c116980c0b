/**
 * NOTIFY while another append is in flight: the append leaves NOTIFY out of its statement and the store notifies its
 * category right after its commit (see `internal/notifier.ts`). The first append is held in flight by a row lock
 * another transaction takes on its stream, so the second one surely runs beside it.
 */
import { assert, layer } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { PgEventStore, PgSchema } from "@evently/postgres"
import { ExpectedVersion } from "@evently/store"
import { TestDatabase } from "@evently/testing"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as SqlClient from "effect/sql/SqlClient"

const migrated = Layer.provideMerge(PgSchema.layerMigrate, TestDatabase.layer({ maxConnections: 8 }))

const unique = () => crypto.randomUUID().replaceAll("-", "").slice(0, 12)

/** Waits briefly for the notifications that arrived, then returns their payloads. */
const drain = (queue: Queue.Dequeue<{ readonly payload: string }, unknown>) =>
  Effect.andThen(
    Effect.sleep("150 millis"),
    Effect.map(Queue.clear(queue), (all) => all.map((n) => n.payload))
  )

layer(migrated, { excludeTestServices: true, timeout: "60 seconds" })(
  "PgEventStore NOTIFY beside an append in flight",
  (it) => {
    for (const groupCommit of [false, undefined] as const) {
      it.effect(`notifies after commit, once, only what was written (group commit ${groupCommit ?? "on"})`, () =>
        Effect.gen(function* () {
          const pg = yield* PgClient.PgClient
          const sql = yield* SqlClient.SqlClient
          const tables = yield* PgSchema.Tables
          const es = yield* PgEventStore.make({ groupCommit })
          const queue = yield* pg.listen(tables.events)
          const held = `h${unique()}`
          const other = `o${unique()}`
          yield* es.append(`${held}-1`, [{ type: "A", data: 1 }])
          assert.deepStrictEqual(yield* drain(queue), [held])

          const locked = yield* Deferred.make<void>()
          const release = yield* Deferred.make<void>()
          const locker = yield* Effect.forkChild(
            sql.withTransaction(
              Effect.gen(function* () {
                yield* sql`select 1 from ${sql(tables.streams)} where stream = ${`${held}-1`} for update`
                yield* Deferred.succeed(locked, undefined)
                yield* Deferred.await(release)
              })
            )
          )
          yield* Deferred.await(locked)
          // 100 events: with group commit on, a large append goes out beside the batch in flight.
          const events = Array.from({ length: 100 }, (_, i) => ({ type: "B", data: i }))
          const blocked = yield* Effect.forkChild(
            es.append(`${held}-1`, events, { expected: ExpectedVersion.Exact(1) })
          )
          yield* sql<{
            readonly waiting: number
          }>`select count(*)::int4 as waiting from pg_locks where not granted`.pipe(
            Effect.repeat({ until: (rows) => rows[0]!.waiting > 0, schedule: Schedule.spaced("10 millis") })
          )

          yield* Effect.flip(es.append(`${other}-1`, events, { expected: ExpectedVersion.Exact(5) }))
          assert.deepStrictEqual(yield* drain(queue), [], "an append that wrote nothing notifies nothing")
          yield* es.append(`${other}-1`, events, { expected: ExpectedVersion.NoStream })
          yield* es.append(`${other}-2`, events, { expected: ExpectedVersion.NoStream })
          const beside = yield* drain(queue)
          assert.isTrue(beside.length >= 1 && beside.length <= 2, `notified once or twice: ${beside}`)
          assert.isTrue(
            beside.every((category) => category === other),
            `only the appends that committed, while the held one waits: ${beside}`
          )

          yield* Deferred.succeed(release, undefined)
          yield* Fiber.join(locker)
          assert.strictEqual((yield* Fiber.join(blocked)).version, 101)
          assert.deepStrictEqual(yield* drain(queue), [held], "the held append notifies at its commit")
        }).pipe(Effect.scoped)
      )
    }
  }
)
