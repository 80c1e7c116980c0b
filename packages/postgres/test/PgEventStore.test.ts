import { assert, layer } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { PgEventStore, PgSchema } from "@evently/postgres"
import { EventCodec, EventStore, ExpectedVersion } from "@evently/store"
import { EventStoreContract, TestDatabase } from "@evently/testing"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Schema from "effect/Schema"
import * as SchemaTransformation from "effect/SchemaTransformation"
import * as SqlClient from "effect/sql/SqlClient"
import * as Stream from "effect/Stream"
import * as Append from "../src/internal/append.ts"

const database = TestDatabase.layer({ maxConnections: 8 })
const migrated = Layer.provideMerge(PgSchema.layerMigrate, database)
const store = PgEventStore.layer().pipe(Layer.provideMerge(migrated))

// Group commit is on by default; the contract holds with it on and off.
EventStoreContract.suite("PgEventStore", PgEventStore.layer().pipe(Layer.provide(migrated)))
EventStoreContract.suite(
  "PgEventStore (group commit off)",
  PgEventStore.layer({ groupCommit: false }).pipe(Layer.provide(migrated))
)

const unique = () => crypto.randomUUID().replaceAll("-", "").slice(0, 12)

/** Waits briefly for the notifications that arrived, then returns their payloads. */
const drain = (queue: Queue.Dequeue<{ readonly payload: string }, unknown>) =>
  Effect.andThen(
    Effect.sleep("150 millis"),
    Effect.map(Queue.clear(queue), (all) => all.map((n) => n.payload))
  )

layer(store, { excludeTestServices: true, timeout: "60 seconds" })("PgEventStore (Postgres specifics)", (it) => {
  it.effect("NOTIFYs the events table's channel with the category, once per append, at commit", () =>
    Effect.gen(function* () {
      const pg = yield* PgClient.PgClient
      const sql = yield* SqlClient.SqlClient
      const es = yield* EventStore.EventStore
      const queue = yield* pg.listen(PgSchema.tableNames().events)
      const category = `n${unique()}`
      yield* es.append(`${category}-1`, [
        { type: "A", data: 1 },
        { type: "B", data: 2 },
        { type: "C", data: 3 }
      ])
      assert.deepStrictEqual(yield* drain(queue), [category])

      // Inside a caller's transaction: nothing is delivered before commit, and a rollback delivers nothing.
      const before = yield* sql.withTransaction(
        Effect.gen(function* () {
          yield* es.append(`${category}-2`, [{ type: "A", data: 1 }])
          return yield* drain(queue)
        })
      )
      assert.deepStrictEqual(before, [])
      assert.deepStrictEqual(yield* drain(queue), [category])
      yield* Effect.flip(
        sql.withTransaction(Effect.andThen(es.append(`${category}-3`, [{ type: "A", data: 1 }]), Effect.fail("abort")))
      )
      assert.deepStrictEqual(yield* drain(queue), [])
      assert.strictEqual(yield* es.streamVersion(`${category}-3`), 0)

      // A failed expectation notifies nothing; notify: false never notifies.
      yield* Effect.flip(es.append(`${category}-1`, [{ type: "X", data: 0 }], { expected: ExpectedVersion.NoStream }))
      const quiet = yield* PgEventStore.make({ notify: false })
      yield* quiet.append(`${category}-4`, [{ type: "A", data: 1 }])
      assert.deepStrictEqual(yield* drain(queue), [])
      assert.strictEqual(yield* es.streamVersion(`${category}-4`), 1)
    }).pipe(Effect.scoped)
  )

  it.effect("joins the caller's transaction: its transaction id, and its rollback", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const es = yield* EventStore.EventStore
      const stream = `t${unique()}-1`
      const [txid, result] = yield* sql.withTransaction(
        Effect.all([
          Effect.map(sql<{ readonly id: string }>`select pg_current_xact_id()::text as id`, (rows) =>
            BigInt(rows[0]!.id)
          ),
          Effect.andThen(es.append(stream, [{ type: "A", data: 1 }]), es.append(stream, [{ type: "B", data: 2 }]))
        ])
      )
      assert.strictEqual(result.version, 2)
      const events = yield* Stream.runCollect(es.readStream(stream))
      assert.deepStrictEqual(
        [...events].map((e) => e.transactionId),
        [txid, txid]
      )
    })
  )

  it.effect("surfaces SQL failures as StoreError with the SqlError kept as the cause", () =>
    Effect.gen(function* () {
      const missing = yield* PgEventStore.make().pipe(
        Effect.provideService(PgSchema.Tables, PgSchema.tableNames("nowhere_"))
      )
      const append = yield* Effect.flip(missing.append("a-1", [{ type: "A", data: 1 }]))
      assert.strictEqual(append._tag, "StoreError")
      assert.strictEqual(append._tag === "StoreError" && (append.cause as { _tag?: string })._tag, "SqlError")
      const read = yield* Effect.flip(Stream.runDrain(missing.readAll()))
      assert.strictEqual(read._tag, "StoreError")
      const version = yield* Effect.flip(missing.streamVersion("a-1"))
      assert.strictEqual(version._tag, "StoreError")
    })
  )

  it.effect("the append statement has one text for every batch size and expectation, so it stays prepared", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const texts = new Set<string>()
      for (const [count, expected] of [
        [1, ExpectedVersion.Any],
        [3, ExpectedVersion.NoStream],
        [50, ExpectedVersion.Exact(7)],
        [2, ExpectedVersion.StreamExists]
      ] as const) {
        const prepared = yield* EventStore.prepareAppend(
          "a-1",
          Array.from({ length: count }, (_, i) => ({ type: "A", data: { i } })),
          { expected }
        )
        const [text, params] = Append.statement(
          sql,
          PgSchema.tableNames(),
          Append.parameters(prepared, new Date(0), "evently_events", true)
        ).compile()
        texts.add(text)
        assert.strictEqual(params.length, 23)
      }
      assert.strictEqual(texts.size, 1)
    })
  )

  it.effect("a typed store upcasts rows an older codec wrote to Postgres, and names a row that does not decode", () =>
    Effect.gen(function* () {
      const es = yield* EventStore.EventStore
      const stream = `task${unique()}-1`
      const old = EventCodec.make(Schema.Union([Schema.TaggedStruct("Renamed", { name: Schema.String })]))
      const current = EventCodec.make(Schema.Union([Schema.TaggedStruct("Renamed", { title: Schema.String })]), {
        versions: { Renamed: 2 },
        upcasters: {
          Renamed: {
            1: Schema.Struct({ name: Schema.String }).pipe(
              Schema.decodeTo(
                Schema.Struct({ title: Schema.String }),
                SchemaTransformation.transform({
                  decode: (v1) => ({ title: v1.name }),
                  encode: (v2) => ({ name: v2.title })
                })
              )
            )
          }
        }
      })
      yield* EventCodec.typed(es, old).append(stream, [{ _tag: "Renamed", name: "from v1" }])
      yield* EventCodec.typed(es, current).append(stream, [{ _tag: "Renamed", title: "from v2" }])
      const typed = EventCodec.typed(es, current)
      const read = yield* Stream.runCollect(typed.readStream(stream))
      assert.deepStrictEqual(
        [...read].map((e) => [e.schemaVersion, e.event]),
        [
          [1, { _tag: "Renamed", title: "from v1" }],
          [2, { _tag: "Renamed", title: "from v2" }]
        ]
      )
      const bad = yield* es.append(stream, [{ type: "Renamed", schemaVersion: 2, data: { title: 42 } }])
      const error = yield* Effect.flip(Stream.runCollect(typed.readStream(stream)))
      assert.deepStrictEqual(
        error._tag === "EventDecodeError" && [error.position, error.stream, error.type, error.schemaVersion],
        [bad.positions[0], stream, "Renamed", 2]
      )
    })
  )
})
