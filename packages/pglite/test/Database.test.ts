import { assert, describe, it } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { Database } from "@evently/pglite"
import { PgConfig } from "@evently/postgres"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as SqlClient from "effect/sql/SqlClient"

const withEnv = (env: Record<string, string>) =>
  Database.layer.pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env }))))

const serverVersion = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const pg = yield* PgClient.PgClient
  const [row] = yield* sql<{ version: string }>`select version() as version`
  // Both choices provide a PgClient that can LISTEN.
  const queue = yield* pg.listen("evently_database_probe")
  yield* pg.notify("evently_database_probe", "hello")
  const { payload } = yield* Queue.take(queue)
  return { version: row!.version, payload }
}).pipe(Effect.scoped)

describe("Database", () => {
  it.effect("chooses the embedded database when no server variable is set", () =>
    Effect.gen(function* () {
      const none = yield* Effect.provide(Database.choice, ConfigProvider.layer(ConfigProvider.fromEnv({ env: {} })))
      assert.deepStrictEqual(none, { _tag: "Embedded", dataDir: Option.none() })
      const kept = yield* Effect.provide(
        Database.choice,
        ConfigProvider.layer(ConfigProvider.fromEnv({ env: { EVENTLY_DATA_DIR: "/tmp/evently-data" } }))
      )
      assert.deepStrictEqual(kept, { _tag: "Embedded", dataDir: Option.some("/tmp/evently-data") })
      const pgHost = yield* Effect.provide(
        Database.choice,
        ConfigProvider.layer(ConfigProvider.fromEnv({ env: { PGHOST: "db.example", EVENTLY_DATA_DIR: "/x" } }))
      )
      assert.strictEqual(pgHost._tag, "Postgres")
      assert.strictEqual(
        pgHost._tag === "Postgres" ? Redacted.value(pgHost.url) : "",
        "postgres://postgres@db.example:5432/test"
      )
    })
  )

  it.live(
    "Database.layer runs on PGlite when nothing is configured",
    () =>
      Effect.gen(function* () {
        const { payload, version } = yield* Effect.provide(serverVersion, withEnv({}))
        assert.include(version, "PGlite")
        assert.strictEqual(payload, "hello")
      }),
    120_000
  )

  it.live(
    "Database.layer runs on the PostgreSQL server when DATABASE_URL is set",
    () =>
      Effect.gen(function* () {
        // The server the other Postgres tests use (DATABASE_URL / PG* from the real environment, or the default).
        const url = yield* PgConfig.url
        const { payload, version } = yield* Effect.provide(
          serverVersion,
          withEnv({ DATABASE_URL: Redacted.value(url) })
        )
        assert.match(version, /^PostgreSQL /)
        assert.notInclude(version, "PGlite")
        assert.strictEqual(payload, "hello")
      }),
    60_000
  )
})
