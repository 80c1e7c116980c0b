import { assert, layer } from "@effect/vitest"
import { PgSchema } from "@evently/postgres"
import { TestDatabase } from "@evently/testing"
import * as Effect from "effect/Effect"
import * as SqlClient from "effect/sql/SqlClient"

layer(TestDatabase.layer(), { excludeTestServices: true, timeout: "60 seconds" })("PgSchema", (it) => {
  it.effect("migrations are harmless when run twice and from several fibers at once", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const runs = yield* Effect.all([PgSchema.migrate, PgSchema.migrate, PgSchema.migrate], { concurrency: 3 })
      assert.deepStrictEqual(runs.map((applied) => applied.length).sort(), [
        0,
        0,
        Object.keys(PgSchema.migrations).length
      ])
      assert.deepStrictEqual(yield* PgSchema.migrate, [])
      const tables = yield* sql<{ name: string }>`
        select table_name as name from information_schema.tables
        where table_schema = 'public' and table_name like 'evently_%' order by 1`
      assert.includeMembers(
        tables.map((t) => t.name),
        ["evently_events", "evently_migrations", "evently_streams"]
      )
    })
  )

  it.effect("table names take another prefix", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* PgSchema.migrate.pipe(Effect.provideService(PgSchema.Tables, PgSchema.tableNames("other_")))
      const [row] = yield* sql<{ found: boolean }>`select to_regclass('other_events') is not null as found`
      assert.isTrue(row!.found)
      assert.throws(() => PgSchema.tableNames("bad prefix; drop"))
    })
  )
})
