import { assert, layer } from "@effect/vitest"
import * as PgProjections from "@evently/postgres/PgProjections"
import { Subscriptions } from "@evently/store"
import * as Projection from "@evently/store/Projection"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as SqlClient from "effect/sql/SqlClient"
import { layerSubscriptions } from "./helpers.ts"
import { ItemCodec, ItemsV1, ItemsV2, expectedItems, itemsOf, writeItems } from "./projections.ts"

const fast = { registryPollInterval: "100 millis", pollInterval: "100 millis" } as const

const stateOf = (name: string) =>
  Effect.map(PgProjections.builds(name), (builds) => builds.map((b) => `v${b.version}b${b.build} ${b.state}`))

layer(layerSubscriptions(), { excludeTestServices: true, timeout: "60 seconds" })("PgProjections", (it) => {
  it.effect("a table projection's writes commit with its checkpoint: a failing handler leaves neither", () =>
    Effect.gen(function* () {
      const failing = Projection.make({
        name: "failing",
        version: 1,
        tables: { failing_items: (sql, table) => sql`create table ${sql(table)} (id text primary key)` },
        sources: [
          Projection.on("item", ItemCodec, {
            Created: (_, ctx) =>
              Effect.gen(function* () {
                const sql = yield* SqlClient.SqlClient
                if (ctx.recorded.stream === "item-3") return yield* Effect.fail("refused")
                yield* sql`insert into ${sql(ctx.tables.failing_items!)} (id) values (${ctx.recorded.stream})`
              })
          })
        ]
      })
      yield* writeItems(1, 5)
      const exit = yield* Effect.exit(PgProjections.run(failing, fast))
      assert.strictEqual(exit._tag, "Failure")
      const sql = yield* SqlClient.SqlClient
      // Items 1 and 2 were written in the same batch as 3: rolled back with it, and the checkpoint did not move.
      const rows = yield* sql<{ id: string }>`select id from failing_items_v1`
      assert.deepStrictEqual(rows, [])
      const subscriptions = yield* Subscriptions.Subscriptions
      const status = yield* subscriptions.status(Projection.subscriptionName(failing))
      assert.deepStrictEqual(
        status.partitions.map((p) => [p.checkpoint.position, p.lagEvents]),
        [[0n, 5]]
      )
    })
  )
})

layer(layerSubscriptions(), { excludeTestServices: true, timeout: "60 seconds" })("PgProjections versions", (it) => {
  it.effect("versions: v1 becomes active, v2 takes over once caught up, drop refuses the active one", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* writeItems(1, 50, { rename: true })
      const v1 = yield* Effect.forkChild(PgProjections.run(ItemsV1, fast))
      yield* PgProjections.waitUntilCaughtUp("items")
      assert.deepStrictEqual(yield* stateOf("items"), ["v1b1 active"])
      assert.deepStrictEqual(yield* itemsOf("items"), yield* expectedItems)

      const v2 = yield* Effect.forkChild(PgProjections.run(ItemsV2, fast))
      yield* writeItems(51, 60)
      yield* Effect.repeat(stateOf("items"), {
        until: (states) => states.includes("v2b1 active"),
        schedule: Schedule.spaced("20 millis")
      })
      yield* PgProjections.waitUntilCaughtUp("items")
      assert.deepStrictEqual(yield* stateOf("items"), ["v1b1 retired", "v2b1 active"])
      const phases = yield* Stream.runCollect(Stream.take(PgProjections.lifecycle("items"), 2))
      assert.deepStrictEqual(phases.map((event) => [event.subscription, event.phase._tag]).sort(), [
        ["projection:items:v1", "CaughtUp"],
        ["projection:items:v2", "CaughtUp"]
      ])
      assert.deepStrictEqual(yield* itemsOf("items"), yield* expectedItems)
      const [columns] = yield* sql<{ length: number }>`select length from items where id = 'item-7'`
      assert.strictEqual(columns!.length, "renamed 7".length)

      // A v1 process still running keeps v1's table up to date, harmlessly, and never takes over again.
      yield* writeItems(61, 62)
      yield* Subscriptions.Subscriptions.pipe(
        Effect.flatMap((subscriptions) => subscriptions.waitUntilCaughtUp(Projection.subscriptionName(ItemsV1)))
      )
      assert.strictEqual((yield* itemsOf("items_v1")).length, 62)
      assert.deepStrictEqual(yield* stateOf("items"), ["v1b1 retired", "v2b1 active"])

      const refused = yield* Effect.flip(PgProjections.drop("items", 2))
      assert.strictEqual(refused._tag, "ActiveBuild")
      assert.match(refused.message, /is active: readers are served from it/)
      const unknown = yield* Effect.flip(PgProjections.drop("items", 3))
      assert.strictEqual(unknown._tag, "UnknownProjection")

      yield* Fiber.interrupt(v1)
      const dropped = yield* PgProjections.drop("items", 1)
      assert.deepStrictEqual(
        dropped.map((b) => b.subscription),
        ["projection:items:v1"]
      )
      const [left] = yield* sql<{ tables: number; checkpoints: number }>`select
        (select count(*)::int from pg_tables where tablename = 'items_v1') as tables,
        (select count(*)::int from evently_checkpoints where subscription = 'projection:items:v1') as checkpoints`
      assert.deepStrictEqual(left, { tables: 0, checkpoints: 0 })
      assert.deepStrictEqual(yield* stateOf("items"), ["v2b1 active"])

      // Version 1 deployed again (an old process started late): it is built, but never takes over from version 2.
      const late = yield* Effect.forkChild(PgProjections.run(ItemsV1, fast))
      yield* Effect.repeat(stateOf("items"), {
        until: (states) => states.includes("v1b1 retired"),
        schedule: Schedule.spaced("20 millis")
      })
      assert.deepStrictEqual(yield* stateOf("items"), ["v1b1 retired", "v2b1 active"])
      const [view] = yield* sql<{ columns: number }>`select count(*)::int as columns from information_schema.columns
        where table_name = 'items'`
      assert.strictEqual(view!.columns, 4)
      yield* Effect.forEach([late, v2], Fiber.interrupt)
    })
  )
})

const shared = (name: string, version: number, table: string) =>
  Projection.make({
    name,
    version,
    tables: { [table]: (sql, physical) => sql`create table ${sql(physical)} (id text primary key)` },
    sources: [Projection.on("item", ItemCodec, { Created: () => Effect.void })]
  })

layer(layerSubscriptions(), { excludeTestServices: true, timeout: "60 seconds" })("PgProjections tables", (it) => {
  it.effect("a view name another projection owns, or a table already there, is refused with InvalidProjection", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const alpha = yield* Effect.forkChild(PgProjections.run(shared("alpha", 1, "shared_view"), fast))
      yield* Effect.repeat(PgProjections.builds("alpha"), {
        until: (builds) => builds.length === 1,
        schedule: Schedule.spaced("20 millis")
      })
      // Version 2 of beta would write shared_view_v2, beside alpha's shared_view_v1, and both would switch the view.
      const beta = yield* Effect.flip(PgProjections.run(shared("beta", 2, "shared_view"), fast))
      assert.strictEqual(beta._tag, "InvalidProjection")
      assert.match(beta.message, /its table 'shared_view' is a table of projection 'alpha'/)
      const rebuilt = yield* Effect.flip(PgProjections.rebuild(shared("beta", 2, "shared_view"), fast))
      assert.strictEqual(rebuilt._tag, "InvalidProjection")
      assert.deepStrictEqual(yield* PgProjections.builds("beta"), [])

      yield* sql`create table plain_table (id text)`
      const gamma = yield* Effect.flip(PgProjections.run(shared("gamma", 1, "plain_table"), fast))
      assert.match(gamma.message, /a relation named 'plain_table' that is not a view exists/)
      const [left] = yield* sql<{ count: number }>`select count(*)::int as count from pg_tables
        where tablename in ('shared_view_v2', 'plain_table_v1')`
      assert.strictEqual(left!.count, 0)
      yield* Fiber.interrupt(alpha)
    })
  )
})

const parking = (version: number) =>
  Projection.make({
    name: "parking",
    version,
    tables: { parking: (sql, table) => sql`create table ${sql(table)} (id text primary key)` },
    sources: [
      Projection.on("item", ItemCodec, {
        Created: (_, ctx) =>
          Effect.gen(function* () {
            const sql = yield* SqlClient.SqlClient
            if (ctx.recorded.stream === "item-2") return yield* Effect.fail("refused")
            yield* sql`insert into ${sql(ctx.tables.parking!)} (id) values (${ctx.recorded.stream})`
          })
      })
    ]
  })

layer(layerSubscriptions(), { excludeTestServices: true, timeout: "60 seconds" })("PgProjections drop", (it) => {
  it.effect("drop removes a build's parked events, and a build created again starts from the beginning", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const subscriptions = yield* Subscriptions.Subscriptions
      const options = { ...fast, onError: Subscriptions.Skip }
      yield* writeItems(1, 3)
      const v1 = yield* Effect.forkChild(PgProjections.run(parking(1), options))
      yield* PgProjections.waitUntilCaughtUp("parking")
      const v2 = yield* Effect.forkChild(PgProjections.run(parking(2), options))
      yield* Effect.repeat(stateOf("parking"), {
        until: (states) => states.includes("v2b1 active"),
        schedule: Schedule.spaced("20 millis")
      })
      yield* Effect.forEach([v1, v2], Fiber.interrupt)
      assert.strictEqual((yield* subscriptions.parked("projection:parking:v1")).length, 1)
      yield* sql`create table stale_checkpoints as select * from evently_checkpoints
        where subscription = 'projection:parking:v1'`

      yield* PgProjections.drop("parking", 1)
      assert.deepStrictEqual(yield* subscriptions.parked("projection:parking:v1"), [])
      // A v1 process that still ran commits its checkpoint after the drop; then version 1 is deployed again.
      yield* sql`insert into evently_checkpoints select * from stale_checkpoints`
      const late = yield* Effect.forkChild(PgProjections.run(parking(1), options))
      yield* Effect.repeat(stateOf("parking"), {
        until: (states) => states.includes("v1b1 retired"),
        schedule: Schedule.spaced("20 millis")
      })
      yield* Fiber.interrupt(late)
      const rows = yield* sql<{ id: string }>`select id from parking_v1 order by id`
      assert.deepStrictEqual(
        rows.map((row) => row.id),
        ["item-1", "item-3"]
      )
      assert.strictEqual((yield* subscriptions.parked("projection:parking:v1")).length, 1)
    })
  )
})

layer(layerSubscriptions(), { excludeTestServices: true, timeout: "60 seconds" })("PgProjections options", (it) => {
  it.effect("a bad option fails typed before the version is registered or its tables created", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const projection = shared("opts", 1, "opts_view")
      const poll = yield* Effect.flip(PgProjections.run(projection, { registryPollInterval: "soon" as never }))
      assert.strictEqual(poll._tag, "InvalidProjection")
      assert.match(poll.message, /registryPollInterval must be a finite duration of at least 1 milliseconds, not soon/)
      const wait = yield* Effect.flip(PgProjections.run(projection, { switchWait: -1 }))
      assert.match(wait.message, /switchWait must be a finite duration of at least 0 milliseconds, not -1/)
      const progress = yield* Effect.flip(PgProjections.rebuild(projection, { progressInterval: "0 millis" }))
      assert.match(progress.message, /progressInterval must be/)
      const waited = yield* Effect.flip(PgProjections.waitUntilCaughtUp("opts", { timeout: "a while" as never }))
      assert.strictEqual(waited._tag, "InvalidSubscription")
      assert.match(waited.message, /timeout must be a duration of at least 0 milliseconds, not a while/)
      const batch = yield* Effect.flip(PgProjections.run(projection, { batchSize: 0 }))
      assert.strictEqual(batch._tag, "InvalidSubscription")
      assert.deepStrictEqual(yield* PgProjections.builds("opts"), [])
      const [tables] = yield* sql<{ count: number }>`select count(*)::int as count from pg_tables
        where tablename like 'opts_view%'`
      assert.strictEqual(tables!.count, 0)
    })
  )
})

layer(layerSubscriptions(), { excludeTestServices: true, timeout: "60 seconds" })(
  "PgProjections drop retired",
  (it) => {
    it.effect("dropping a retired build that a process still runs does not end that process's run", () =>
      Effect.gen(function* () {
        const projection = Projection.make({
          name: "dropme",
          version: 1,
          tables: { dropme: (sql, table) => sql`create table ${sql(table)} (id text primary key)` },
          sources: [
            Projection.on("item", ItemCodec, {
              Created: (_, ctx) =>
                Effect.flatMap(
                  SqlClient.SqlClient,
                  (sql) => sql`insert into ${sql(ctx.tables.dropme!)} (id) values (${ctx.recorded.stream})`
                )
            })
          ]
        })
        yield* writeItems(1, 3)
        // This process reads the registry once an hour: it still runs build 1 after build 2 took over.
        const process = yield* Effect.forkChild(
          PgProjections.run(projection, { registryPollInterval: "1 hour", pollInterval: "100 millis" })
        )
        yield* PgProjections.waitUntilCaughtUp("dropme")
        const rebuilt = yield* PgProjections.rebuild(projection, fast)
        assert.strictEqual(rebuilt.state, "active")
        yield* PgProjections.drop("dropme", 1, { build: 1 })
        const stopped = yield* Effect.forkChild(
          Stream.runHead(
            Stream.filter(
              PgProjections.lifecycle("dropme"),
              (event) => event.subscription === "projection:dropme:v1" && event.phase._tag === "Stopped"
            )
          )
        )
        yield* writeItems(4, 4)
        yield* Fiber.join(stopped)
        // Its build 1 stopped on the missing table; the run goes on (it ended at once with HandlerFailed before).
        const exit = yield* Fiber.await(process).pipe(Effect.timeoutOption("1 second"))
        assert.strictEqual(exit._tag, "None")
        yield* Fiber.interrupt(process)
      })
    )
  }
)
