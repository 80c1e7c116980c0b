import { assert, layer } from "@effect/vitest"
import { PgEventStore, PgSchema } from "@evently/postgres"
import { EventStore, ExpectedVersion } from "@evently/store"
import { TestDatabase } from "@evently/testing"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as SqlClient from "effect/sql/SqlClient"
import * as Stream from "effect/Stream"
import { databaseUrl, run } from "./processes.ts"

const database = Layer.provideMerge(PgSchema.layerMigrate, TestDatabase.layer())
const store = PgEventStore.layer().pipe(Layer.provideMerge(database))

layer(store, { excludeTestServices: true, timeout: "90 seconds" })("cats (two real processes on Postgres)", (it) => {
  it.effect(
    "update: two processes load version 1; the first to press Enter wins, the second exits 1 on a conflict",
    () =>
      Effect.gen(function* () {
        const es = yield* EventStore.EventStore
        const url = yield* databaseUrl
        yield* es.append("cat-tom", [{ type: "Adopted", data: { name: "tom" } }], {
          expected: ExpectedVersion.NoStream
        })

        const first = yield* run("update", ["tom"], url)
        const second = yield* run("update", ["tom"], url)
        yield* Effect.all(
          [first.waitFor("Loaded cat-tom at version 1"), second.waitFor("Loaded cat-tom at version 1")],
          {
            concurrency: "unbounded"
          }
        )
        yield* Effect.all([first.waitFor("Press Enter"), second.waitFor("Press Enter")], { concurrency: "unbounded" })

        yield* first.pressEnter
        yield* first.waitFor("Appended Fed to cat-tom: now at version 2")
        assert.strictEqual(yield* first.exitCode, 0)

        yield* second.pressEnter
        assert.strictEqual(yield* second.exitCode, 1)
        assert.include(
          second.output.stderr,
          "Conflict: cat-tom was at version 1 when you loaded it, but it is now at version 2 — reload and try again"
        )
        assert.notInclude(second.output.stdout, "Appended")

        const events = yield* Stream.runCollect(es.readStream("cat-tom"))
        assert.deepStrictEqual(
          events.map((event) => [event.streamVersion, event.type, event.data]),
          [
            [1, "Adopted", { name: "tom" }],
            [2, "Fed", { food: "tuna" }]
          ]
        )
      }).pipe(Effect.scoped)
  )

  it.effect("tail prints the history, then an event appended after it started, as it happens", () =>
    Effect.gen(function* () {
      const es = yield* EventStore.EventStore
      const url = yield* databaseUrl
      const tail = yield* run("tail", [], url)
      yield* tail.waitFor("Tailing every cat's events")
      yield* tail.waitFor('cat-tom v2 Fed {"food":"tuna"}')

      const felix = `felix${crypto.randomUUID().slice(0, 8)}`
      const appended = yield* es.append(`cat-${felix}`, [{ type: "Adopted", data: { name: felix } }])
      yield* tail.waitFor(`cat-${felix} v1 Adopted {"name":"${felix}"} (position ${appended.positions[0]})`)
      assert.strictEqual(tail.output.code, undefined, "tail keeps running")
      // The tail is ephemeral: it leaves no checkpoint row behind, however often it runs.
      const sql = yield* SqlClient.SqlClient
      const [rows] = yield* sql<{ count: number }>`select count(*)::int as count from evently_checkpoints`
      assert.strictEqual(rows!.count, 0)
    }).pipe(Effect.scoped)
  )
})
