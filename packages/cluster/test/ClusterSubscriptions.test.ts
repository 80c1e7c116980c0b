import { assert, layer } from "@effect/vitest"
import { EventStore } from "@evently/store"
import * as Effect from "effect/Effect"
import * as SqlClient from "effect/sql/SqlClient"
import { databaseName, layerStore, runner, settled, unique, waitFor } from "./helpers.ts"

const appendCounters = (from: number, count: number) =>
  Effect.gen(function* () {
    const store = yield* EventStore.EventStore
    for (let i = from; i < from + count; i++) {
      yield* store.append(`counter-${i % 10}`, [{ type: "Added", data: { amount: i + 1, by: "test" } }])
    }
  }).pipe(Effect.orDie)

/** How many events the `tally` subscription recorded, by the port of the runner that handled them. */
const tallies = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ readonly runner: string; readonly count: number }>`
    select runner, count(*)::int as count from tally group by runner`
  return Object.fromEntries(rows.map((row) => [row.runner, row.count])) as Record<string, number>
}).pipe(Effect.orDie)

const total = (counts: Record<string, number>) => Object.values(counts).reduce((sum, count) => sum + count, 0)

layer(layerStore, { excludeTestServices: true, timeout: "120 seconds" })(
  "subscriptions as cluster singletons",
  (it) => {
    it.effect(
      "a subscription registered on two runners runs on one; killed, it moves to the other and handles each event once",
      () =>
        Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          yield* Effect.orDie(sql`create table tally (event_id text primary key, runner text not null)`)
          const database = yield* databaseName
          const prefix = unique("s")
          const first = yield* runner(database, prefix, { TALLY: "1" })
          const second = yield* runner(database, prefix, { TALLY: "1" })
          // A runner joining moves shards, and the singleton with its shard: wait until they have settled.
          yield* settled([first.applicationName, second.applicationName], 60)

          yield* appendCounters(0, 100)
          const before = yield* waitFor(tallies, (counts) => total(counts) === 100)
          // One runner ran it: the singleton was never on both at once.
          const owners = Object.keys(before)
          assert.strictEqual(owners.length, 1)
          const [owner, other] = owners[0] === String(first.port) ? [first, second] : [second, first]
          assert.strictEqual(owners[0], String(owner.port))

          owner.kill()
          yield* appendCounters(100, 100)
          // A duplicate would fail the insert (primary key) and stop the subscription short of 200.
          const after = yield* waitFor(tallies, (counts) => total(counts) === 200)
          assert.deepStrictEqual(after, { [String(owner.port)]: 100, [String(other.port)]: 100 })
        }).pipe(Effect.scoped),
      120_000
    )
  }
)
