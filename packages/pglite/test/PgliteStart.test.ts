import { assert, describe, it } from "@effect/vitest"
import { PgliteClient } from "@evently/pglite"
import * as Effect from "effect/Effect"
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

/** A cache directory of the test's own, removed with the scope. */
const scratchCache = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "evently-pglite-cache-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

/** Opens an in-memory database in `cacheDir`, runs `use` on it and closes it; returns how it started and the result. */
const withDatabase = <A>(cacheDir: string, use: (db: PgliteClient.Opened["db"]) => Promise<A>) =>
  Effect.scoped(
    Effect.gen(function* () {
      const { db, source } = yield* PgliteClient.open({ cacheDir })
      const result = yield* Effect.promise(() => use(db))
      return { source, result }
    })
  )

const tables = (db: PgliteClient.Opened["db"]) =>
  db
    .query<{ name: string }>("select table_name as name from information_schema.tables where table_schema = 'public'")
    .then((result) => result.rows.map((row) => row.name))

const bundles = (cacheDir: string) => readdirSync(cacheDir).filter((name) => name.endsWith(".bin"))

describe("PgliteClient.open in memory", () => {
  it.live(
    "prepares the data directory on the first start, starts from it on the next, and each start is fresh and empty",
    () =>
      Effect.gen(function* () {
        const cacheDir = yield* scratchCache
        const first = yield* withDatabase(cacheDir, async (db) => {
          const before = await tables(db)
          await db.exec("create table left_behind (n int); insert into left_behind values (1)")
          return { before, after: await tables(db) }
        })
        assert.strictEqual(first.source, "initdb")
        assert.deepStrictEqual(first.result, { before: [], after: ["left_behind"] })
        assert.strictEqual(bundles(cacheDir).length, 1)

        const second = yield* withDatabase(cacheDir, async (db) => {
          const [row] = (await db.query<{ buffers: string }>("select current_setting('shared_buffers') as buffers"))
            .rows
          return { tables: await tables(db), buffers: row!.buffers }
        })
        assert.strictEqual(second.source, "cache")
        // Fresh: nothing the first run wrote is there.
        assert.deepStrictEqual(second.result, { tables: [], buffers: "16MB" })
        // The bundle is read, never written through.
        assert.strictEqual(bundles(cacheDir).length, 1)

        const third = yield* withDatabase(cacheDir, tables)
        assert.deepStrictEqual(third, { source: "cache", result: [] })
      }),
    180_000
  )

  it.live(
    "replaces a prepared data directory that cannot be read",
    () =>
      Effect.gen(function* () {
        const cacheDir = yield* scratchCache
        yield* withDatabase(cacheDir, tables)
        const [bundle] = bundles(cacheDir)
        writeFileSync(join(cacheDir, bundle!), "not a data directory")

        const again = yield* withDatabase(cacheDir, tables)
        assert.deepStrictEqual(again, { source: "initdb", result: [] })
        assert.isTrue(existsSync(join(cacheDir, bundle!)))
        const next = yield* withDatabase(cacheDir, tables)
        assert.strictEqual(next.source, "cache")
      }),
    180_000
  )
})
