import { assert } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as SqlClient from "effect/sql/SqlClient"

/**
 * Run by two test files at once: each creates the same table in its own database, writes rows marked with its
 * own name while the other does the same, and must then see only its own rows.
 */
export const probeIsolation = (marker: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql`create table shared_name (n int primary key, marker text not null)`
    for (let round = 0; round < 20; round++) {
      yield* sql`insert into shared_name (n, marker) select g, ${marker} from generate_series(${round * 50 + 1}::int, ${
        round * 50 + 50
      }::int) g`
      yield* Effect.sleep("10 millis")
    }
    const rows = yield* sql<{ marker: string; count: string }>`
      select marker, count(*)::text as count from shared_name group by marker`
    assert.deepStrictEqual(
      rows.map((r) => [r.marker, r.count]),
      [[marker, "1000"]]
    )
  })
