import { afterAll, assert, layer } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { PGlite } from "@electric-sql/pglite"
import { PgliteClient } from "@evently/pglite"
import { PgEventStore, PgSchema, PgSubscriptions } from "@evently/postgres"
import * as PgProjections from "@evently/postgres/PgProjections"
import { EventCodec, Subscriptions } from "@evently/store"
import * as Projection from "@evently/store/Projection"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as SqlClient from "effect/sql/SqlClient"

const NoteEvents = Schema.TaggedUnion({ Written: { text: Schema.String } })
const NoteCodec = EventCodec.make(NoteEvents)

let instance: Promise<PGlite> | undefined
const shared = () => (instance ??= PGlite.create())
afterAll(() => instance?.then((db) => db.close()))

const Embedded = Layer.mergeAll(
  PgSubscriptions.layer({ lockRetryInterval: "100 millis", reconnectDelay: "100 millis" }),
  PgEventStore.layer(),
  PgProjections.layerBoundaries
).pipe(
  Layer.provideMerge(
    Layer.provideMerge(
      PgSchema.layerMigrate,
      Layer.unwrap(Effect.map(Effect.promise(shared), (db) => PgClient.layerFrom(PgliteClient.fromPglite(db))))
    ).pipe(Layer.orDie)
  )
)

// Notes: each Written event is a row, with whether it was handled as history. The tables are declared first, so
// that the handlers know their names (`ctx.tables.notes`).
const noteTables = Projection.tables({
  notes: (sql, table) =>
    sql`create table ${sql(table)} (id text primary key, text text not null, replaying bool not null)`
})
const notes = Projection.make({
  name: "notes",
  version: 1,
  tables: noteTables,
  sources: [
    noteTables.on("note", NoteCodec, {
      Written: (event, ctx) =>
        Effect.flatMap(
          SqlClient.SqlClient,
          (sql) => sql`insert into ${sql(ctx.tables.notes)} (id, text, replaying)
            values (${ctx.recorded.eventId}, ${event.text}, ${ctx.replaying})`
        )
    })
  ]
})

const write = (text: string) =>
  Effect.flatMap(EventCodec.typedStore(NoteCodec), (store) =>
    store.append(`note-${text}`, [NoteEvents.cases.Written.make({ text })])
  )

const rows = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) => sql<{ text: string; replaying: boolean }>`select text, replaying from notes order by text`
)

const fast = { registryPollInterval: "100 millis", pollInterval: "100 millis" } as const

layer(Embedded, { excludeTestServices: true, timeout: "60 seconds" })("PgProjections on PGlite", (it) => {
  it.effect("a table projection: replaying for history; a rebuild of the same version switches blue/green", () =>
    Effect.gen(function* () {
      yield* write("a")
      yield* write("b")
      const running = yield* Effect.forkChild(PgProjections.run(notes, fast))
      yield* PgProjections.waitUntilCaughtUp("notes")
      yield* write("c")
      yield* PgProjections.waitUntilCaughtUp("notes")
      assert.deepStrictEqual(yield* rows, [
        { text: "a", replaying: true },
        { text: "b", replaying: true },
        { text: "c", replaying: false }
      ])

      const progress: Array<PgProjections.Progress> = []
      const rebuilt = yield* PgProjections.rebuild(notes, {
        ...fast,
        progressInterval: "50 millis",
        onProgress: (p) => Effect.sync(() => progress.push(p))
      })
      assert.deepStrictEqual([rebuilt.build, rebuilt.state, rebuilt.tables], [2, "active", { notes: "notes_v1b2" }])
      assert.isTrue(progress.length > 0 && progress.every((p) => p.eventsTotal === 3 && p.build === 2))
      // The rebuild's boundary is its own start: everything before it is history now.
      assert.deepStrictEqual(
        (yield* rows).map((row) => row.replaying),
        [true, true, true]
      )
      // The process running version 1 moved to the new build: it keeps the served table up to date.
      yield* write("d")
      yield* PgProjections.waitUntilCaughtUp("notes")
      assert.deepStrictEqual((yield* rows).at(-1), { text: "d", replaying: false })

      const refused = yield* Effect.flip(PgProjections.drop("notes", 1))
      assert.strictEqual(refused._tag, "ActiveBuild")
      const dropped = yield* PgProjections.drop("notes", 1, { build: 1 })
      assert.deepStrictEqual(
        dropped.map((b) => b.subscription),
        ["projection:notes:v1"]
      )
      assert.deepStrictEqual(
        (yield* PgProjections.builds("notes")).map((b) => [b.build, b.state]),
        [[2, "active"]]
      )
      yield* Fiber.interrupt(running)
    })
  )

  it.effect("a table projection's writes commit with its checkpoint on PGlite too", () =>
    Effect.gen(function* () {
      const failing = Projection.make({
        name: "failing_notes",
        version: 1,
        tables: { failing_notes: (sql, table) => sql`create table ${sql(table)} (id text primary key)` },
        sources: [
          Projection.on("note", NoteCodec, {
            Written: (event, ctx) =>
              Effect.gen(function* () {
                const sql = yield* SqlClient.SqlClient
                if (event.text === "y") return yield* Effect.fail("refused")
                yield* sql`insert into ${sql(ctx.tables.failing_notes!)} (id) values (${ctx.recorded.eventId})`
              })
          })
        ]
      })
      yield* Effect.forEach(["x", "y", "z"], write)
      const exit = yield* Effect.exit(PgProjections.run(failing, { ...fast, batchSize: 10 }))
      assert.strictEqual(exit._tag, "Failure")
      const sql = yield* SqlClient.SqlClient
      assert.deepStrictEqual(yield* sql`select id from failing_notes_v1`, [])
      const subscriptions = yield* Subscriptions.Subscriptions
      const status = yield* subscriptions.status(Projection.subscriptionName(failing))
      assert.deepStrictEqual(
        status.partitions.map((p) => p.checkpoint.position),
        [0n]
      )
    })
  )

  it.effect("a consumer projection keeps its replay boundary in the database across restarts", () =>
    Effect.gen(function* () {
      const seen: Array<string> = []
      const mailer = Projection.make({
        name: "mailer",
        version: 1,
        sources: [
          Projection.on("note", NoteCodec, {
            Written: (event, ctx) =>
              Effect.sync(() => seen.push(`${event.text} ${ctx.replaying ? "replayed" : "sent"}`))
          })
        ]
      })
      yield* write("h")
      for (const text of ["e", "f"]) {
        const fiber = yield* Effect.forkChild(Projection.run(mailer, { pollInterval: "50 millis" }))
        yield* Projection.waitUntilCaughtUp(mailer)
        yield* write(text)
        yield* Projection.waitUntilCaughtUp(mailer)
        yield* Fiber.interrupt(fiber)
      }
      // Every event before the first start (h, and those of the other tests) is history, on both runs.
      assert.deepStrictEqual(seen.slice(-2), ["e sent", "f sent"])
      const history = seen.slice(0, -2)
      assert.include(history, "h replayed")
      assert.isTrue(history.every((line) => line.endsWith("replayed")))
    })
  )
})
