import { afterAll, assert, it } from "@effect/vitest"
import { PGlite } from "@electric-sql/pglite"
import { PgClient } from "@effect/sql-pg"
import { PgliteClient } from "@evently/pglite"
import { PgEventStore, PgSchema, PgSubscriptions } from "@evently/postgres"
import { EventStore, Subscriptions } from "@evently/store"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as SqlClient from "effect/sql/SqlClient"

// On the embedded database too, a transactional batch runs without a savepoint per event, and a batch whose handler
// fails is rolled back and redone with one per event (its single session included).
let instance: Promise<PGlite> | undefined
const shared = () => (instance ??= PGlite.create())
afterAll(() => instance?.then((db) => db.close()))

let tests = 0
const fresh = () => {
  const prefix = `o${++tests}_`
  const client = Layer.unwrap(
    Effect.map(Effect.promise(shared), (db) => PgClient.layerFrom(PgliteClient.fromPglite(db)))
  )
  const migrated = Layer.provideMerge(PgSchema.layerMigrate, client).pipe(Layer.orDie)
  return Layer.mergeAll(PgSubscriptions.layer({ lockRetryInterval: "100 millis" }), PgEventStore.layer()).pipe(
    Layer.provideMerge(migrated),
    Layer.provideMerge(PgSchema.layerTables(prefix))
  )
}

/** Appends 5 events in one commit, then runs a transactional projection that writes a row per event and fails on
 * the positions `failing` after writing; returns the positions, the rows as `[position, copies]` and the parked. */
const project = (name: string, failing: (positions: ReadonlyArray<bigint>) => ReadonlyArray<bigint>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const store = yield* EventStore.EventStore
    const subs = yield* Subscriptions.Subscriptions
    yield* sql`create table ${sql(`${name}_rows`)} (position bigint not null)`
    const { positions } = yield* store.append(
      `${name}-1`,
      Array.from({ length: 5 }, () => ({ type: "Happened", data: {} }))
    )
    const bad = failing(positions)
    const handler = (event: EventStore.RecordedEvent) =>
      Effect.gen(function* () {
        yield* sql`insert into ${sql(`${name}_rows`)} (position) values (${event.position})`
        if (bad.includes(event.position)) return yield* Effect.fail(new Error(`refused ${event.position}`))
      })
    const fiber = yield* subs
      .run(name, handler, { categories: [name], transactional: true, onError: Subscriptions.Skip })
      .pipe(Effect.forkChild)
    yield* subs.waitUntilCaughtUp(name, { timeout: "20 seconds" })
    yield* Fiber.interrupt(fiber)
    const rows = yield* sql<{ position: bigint; copies: number }>`select position, count(*)::int as copies
      from ${sql(`${name}_rows`)} group by position order by position`
    return {
      positions,
      rows: rows.map((row) => [BigInt(row.position), row.copies] as const),
      parked: (yield* subs.parked(name)).map((event) => event.position)
    }
  })

it.live("PGlite: a transactional batch takes no savepoint: its rows share the transaction id of its checkpoint", () =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const t = yield* PgSchema.Tables
    const { rows } = yield* project("happy", () => [])
    assert.strictEqual(rows.length, 5)
    const [ids] = yield* sql<{ xmins: number }>`select count(distinct x)::int as xmins from (
        select xmin::text as x from happy_rows
        union all select xmin::text from ${sql(t.checkpoints)} where subscription = 'happy') s`
    assert.strictEqual(ids!.xmins, 1)
  }).pipe(Effect.provide(fresh()))
)

it.live("PGlite: Skip with the 3rd event failing: the others commit once, the 3rd is parked without its write", () =>
  Effect.gen(function* () {
    const { positions, rows, parked } = yield* project("skip", (appended) => [appended[2]!])
    assert.deepStrictEqual(
      rows,
      positions.filter((_, i) => i !== 2).map((position) => [position, 1] as const)
    )
    assert.deepStrictEqual(parked, [positions[2]!])
  }).pipe(Effect.provide(fresh()))
)
