import { assert, layer } from "@effect/vitest"
import { TestDatabase } from "@evently/testing"
import * as Effect from "effect/Effect"
import * as SqlClient from "effect/sql/SqlClient"
import { probeIsolation } from "./isolation.ts"

layer(TestDatabase.layer(), { excludeTestServices: true, timeout: "60 seconds" })("TestDatabase", (it) => {
  it.effect("connects to a database of its own and reads the transaction id as xid8", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const [db] = yield* sql<{ name: string }>`select current_database() as name`
      assert.match(db!.name, /^evently_test_[0-9a-f]{32}$/)

      yield* sql`create table probe (id int primary key, tx xid8 not null)`
      const rows = yield* sql.withTransaction(
        sql<{ tx: string; type: string }>`
          insert into probe (id, tx) values (1, pg_current_xact_id())
          returning tx::text as tx, pg_typeof(tx)::text as type`
      )
      assert.strictEqual(rows.length, 1)
      assert.strictEqual(rows[0]!.type, "xid8")
      assert.isTrue(BigInt(rows[0]!.tx) > 0n)

      const [back] = yield* sql<{ tx: string }>`select tx::text as tx from probe where id = 1`
      assert.strictEqual(back!.tx, rows[0]!.tx)
    })
  )

  it.effect("does not see the rows of a test file running at the same time", () => probeIsolation("first"))
})
