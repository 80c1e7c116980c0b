import { afterAll, assert, describe, it } from "@effect/vitest"
import { PGlite } from "@electric-sql/pglite"
import { PgClient } from "@effect/sql-pg"
import { PgliteClient } from "@evently/pglite"
import { PgEventStore, PgSchema, PgSubscriptions } from "@evently/postgres"
import { EventStore, Subscriptions } from "@evently/store"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as SqlClient from "effect/sql/SqlClient"

// The embedded database has one session, so connections cannot be killed under a worker; what applies here is a
// checkpoint commit that fails, with batches read ahead (issue 15, defect 1), in plain and transactional mode.
let instance: Promise<PGlite> | undefined
const shared = () => (instance ??= PGlite.create())
afterAll(() => instance?.then((db) => db.close()))

let tests = 0
const fresh = () => {
  const prefix = `f${++tests}_`
  const client = Layer.unwrap(
    Effect.map(Effect.promise(shared), (db) => PgClient.layerFrom(PgliteClient.fromPglite(db)))
  )
  const migrated = Layer.provideMerge(PgSchema.layerMigrate, client).pipe(Layer.orDie)
  return Layer.mergeAll(
    PgSubscriptions.layer({ lockRetryInterval: "100 millis", reconnectDelay: "50 millis" }),
    PgEventStore.layer()
  ).pipe(Layer.provideMerge(migrated), Layer.provideMerge(PgSchema.layerTables(prefix)))
}

// The checkpoint update that moves to `position` or beyond fails `times` times. The count is a sequence: the
// exception rolls back whatever else the failing transaction wrote.
const armCheckpointFailure = (position: bigint, times: number) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const t = yield* PgSchema.Tables
    const counter = `${t.checkpoints}_fault_counter`
    yield* sql`create sequence ${sql(counter)}`
    yield* sql.unsafe(`create function ${t.checkpoints}_fault() returns trigger language plpgsql as $$
      begin
        if new.position <> old.position and new.position >= ${position} and nextval('${counter}') <= ${times} then
          raise exception 'injected checkpoint failure at position %', new.position;
        end if;
        return new;
      end $$`)
    yield* sql.unsafe(`create trigger ${t.checkpoints}_fault before update on ${t.checkpoints}
      for each row execute function ${t.checkpoints}_fault()`)
    return Effect.map(sql<{ fired: string }>`select last_value::text as fired from ${sql(counter)}`, (rows) =>
      Math.min(Number(rows[0]!.fired), times)
    )
  })

// Every log line of a scenario: a single process must never say its checkpoint "was moved by another worker".
const logged: Array<string> = []
const recordLogs = Logger.layer(
  [
    Logger.make((options) => {
      logged.push(String(options.message))
    })
  ],
  { mergeWithExisting: true }
)

const scenario = (transactional: boolean, times: number) =>
  Effect.gen(function* () {
    logged.length = 0
    const sql = yield* SqlClient.SqlClient
    const store = yield* EventStore.EventStore
    const subs = yield* Subscriptions.Subscriptions
    const t = yield* PgSchema.Tables
    const projection = `${t.checkpoints}_projection`
    yield* sql`create table ${sql(projection)} (position bigint primary key, stream text not null, version int not null,
      id bigint generated always as identity)`
    // 60 events over 4 streams, all there before the subscription starts, so batches are read ahead.
    const positions: Array<bigint> = []
    for (let round = 0; round < 15; round++) {
      for (const stream of ["f-a", "f-b", "f-c", "f-d"]) {
        positions.push(...(yield* store.append(stream, [{ type: "Happened", data: { round } }])).positions)
      }
    }
    const fired = yield* armCheckpointFailure(positions[29]!, times)
    const seen: Array<bigint> = []
    const runner = yield* subs
      .run(
        "faults",
        (event) =>
          Effect.gen(function* () {
            seen.push(event.position)
            if (transactional) {
              yield* sql`insert into ${sql(projection)} (position, stream, version)
                values (${event.position}, ${event.stream}, ${event.streamVersion})`
            }
          }),
        { batchSize: 10, transactional }
      )
      .pipe(Effect.forkChild)
    yield* subs.waitUntilCaughtUp("faults", { timeout: "30 seconds" })
    assert.strictEqual(yield* fired, times, "the injected failures fired")
    // Still running: an event appended after the faults is handled too.
    const later = yield* store.append("f-a", [{ type: "Happened", data: { round: 99 } }])
    positions.push(...later.positions)
    yield* subs.waitUntilCaughtUp("faults", { timeout: "30 seconds" })
    assert.isUndefined(runner.pollUnsafe(), "the subscription is still running")
    yield* Fiber.interrupt(runner)

    assert.deepStrictEqual(
      [...new Set(seen)].sort((a, b) => Number(a - b)),
      positions
    )
    if (transactional) {
      const rows = yield* sql<{ position: bigint; stream: string; version: number }>`
        select position, stream, version from ${sql(projection)} order by id`
      assert.deepStrictEqual(
        rows.map((row) => BigInt(row.position)).sort((a, b) => Number(a - b)),
        positions,
        "each event projected exactly once"
      )
      const last = new Map<string, number>()
      for (const row of rows) {
        assert.isAbove(row.version, last.get(row.stream) ?? 0, `${row.stream} in order`)
        last.set(row.stream, row.version)
      }
    }
    const [partition] = (yield* subs.status("faults")).partitions
    assert.strictEqual(partition!.checkpoint.position, positions[positions.length - 1])
    assert.strictEqual(partition!.lagEvents, 0)
    assert.isTrue(
      logged.some((line) => line.includes("commit failed")),
      `the failed commit was logged: ${JSON.stringify(logged)}`
    )
    assert.deepStrictEqual(
      logged.filter((line) => line.includes("moved by another worker")),
      []
    )
  }).pipe(Effect.provide(fresh()), Effect.provide(recordLogs))

const live = (name: string, test: () => Effect.Effect<void, unknown>) => it.live(name, test, 60_000)

describe("PgSubscriptions on PGlite: a failing checkpoint commit with read-ahead", () => {
  live("plain: fails once, nothing lost", () => scenario(false, 1))
  live("plain: fails 3 times in a row, nothing lost", () => scenario(false, 3))
  live("transactional: fails once, every event projected exactly once, in order", () => scenario(true, 1))
  live("transactional: fails 3 times in a row, every event projected exactly once", () => scenario(true, 3))
})

// On a server a plain checkpoint commit does not wait for the WAL flush (its WAL writer flushes it soon after). PGlite
// has no WAL writer and runs in the app's process: such a commit would stay in memory until a later commit waited,
// and a killed process would take it along. So here every checkpoint commit waits, as the server is set to.
describe("PgSubscriptions on PGlite: checkpoint commits", () => {
  live("wait for the flush: no WAL writer to do it later", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const t = yield* PgSchema.Tables
      const store = yield* EventStore.EventStore
      const subs = yield* Subscriptions.Subscriptions
      const settings = `${t.checkpoints}_settings`
      yield* sql`create table ${sql(settings)} (id serial primary key, setting text not null)`
      yield* sql.unsafe(`create function ${settings}_record() returns trigger language plpgsql as $$
        begin insert into ${settings} (setting) values (current_setting('synchronous_commit')); return new; end $$`)
      yield* sql.unsafe(`create trigger ${settings}_record after update on ${t.checkpoints}
        for each row execute function ${settings}_record()`)
      const { positions } = yield* store.append("flush-1", [
        { type: "A", data: 1 },
        { type: "B", data: 2 },
        { type: "C", data: 3 }
      ])
      const fiber = yield* Effect.forkChild(subs.run("flush", () => Effect.void, { batchSize: 1 }))
      yield* subs.waitUntilCaughtUp("flush", { timeout: "20 seconds" })
      yield* Fiber.interrupt(fiber)
      const [partition] = (yield* subs.status("flush")).partitions
      assert.strictEqual(partition!.checkpoint.position, positions[2])
      const recorded = yield* sql<{ setting: string }>`select setting from ${sql(settings)} order by id`
      assert.isAtLeast(recorded.length, 3)
      assert.deepStrictEqual(new Set(recorded.map((row) => row.setting)), new Set(["on"]))
    }).pipe(Effect.provide(fresh()))
  )
})
