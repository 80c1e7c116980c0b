import { assert, layer } from "@effect/vitest"
import { PgTypes } from "@effect/sql-pg"
import { PgEventStore, PgSchema, PgSubscriptions } from "@evently/postgres"
import { EventStore, ExpectedVersion, Subscriptions } from "@evently/store"
import { TestDatabase } from "@evently/testing"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as SqlClient from "effect/sql/SqlClient"
import * as Stream from "effect/Stream"
import * as EventRow from "../src/internal/eventRow.ts"

// An app's client may parse `jsonb` its own way: here a reviver that makes a `Date` of every ISO timestamp string.
// Reads detect it (EventRow.probe) and take `data` as text, so an event's data comes back as it was written and a
// retried append still finds its events the same.
const iso = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/
const reviving = PgTypes.makeRegistry()
reviving.register(PgTypes.OID.jsonb, {
  encode: (value: unknown) => {
    const text = new TextEncoder().encode(JSON.stringify(value))
    const bytes = new Uint8Array(text.length + 1)
    bytes[0] = 1
    bytes.set(text, 1)
    return Result.succeed(bytes)
  },
  decode: (bytes: Uint8Array) =>
    Result.succeed(
      JSON.parse(new TextDecoder().decode(bytes.subarray(1)), (_key, value: unknown) =>
        typeof value === "string" && iso.test(value) ? new Date(value) : value
      ) as unknown
    )
})

const database = TestDatabase.layer({ client: { types: reviving } })
const migrated = Layer.provideMerge(PgSchema.layerMigrate, database)
const stores = Layer.mergeAll(PgEventStore.layer(), PgSubscriptions.layer()).pipe(Layer.provideMerge(migrated))

const data = { placedAt: "2024-01-02T03:04:05.678Z", lines: [{ sku: "a", at: "2024-05-06T07:08:09Z" }] }

layer(stores, { excludeTestServices: true, timeout: "60 seconds" })("a client with its own jsonb codec", (it) => {
  it.effect("reads return data as written, a retried append finds its events, and reads are as text", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const store = yield* EventStore.EventStore
      const subscriptions = yield* Subscriptions.Subscriptions
      // What the codec does to a plain query: the strings become dates.
      const [plain] = yield* sql<{ j: { placedAt: unknown } }>`select ${JSON.stringify(data)}::text::jsonb as j`
      assert.instanceOf(plain!.j.placedAt, Date)

      const events = [{ type: "Placed", data, eventId: crypto.randomUUID() }]
      const first = yield* store.append("order-1", events, { expected: ExpectedVersion.NoStream })
      const retried = yield* store.append("order-1", events, { expected: ExpectedVersion.NoStream })
      assert.deepStrictEqual(retried, first)
      const read = yield* Stream.runCollect(store.readStream("order-1"))
      assert.deepStrictEqual(read[0]!.data, data)
      assert.deepStrictEqual((yield* Stream.runCollect(store.readAll()))[0]!.data, data)
      const seen = yield* Deferred.make<EventStore.RecordedEvent>()
      const fiber = yield* Effect.forkChild(
        subscriptions.run("codecs", (event) => Deferred.succeed(seen, event), { start: Subscriptions.Beginning })
      )
      assert.deepStrictEqual((yield* Deferred.await(seen)).data, data)
      yield* Fiber.interrupt(fiber)
      assert.isFalse(EventRow.columnsOf(sql).binary)
    })
  )
})

// The same on a client with the driver's own codecs: the probe lets reads take `data` and the id binary.
layer(
  Layer.mergeAll(PgEventStore.layer()).pipe(
    Layer.provideMerge(Layer.provideMerge(PgSchema.layerMigrate, TestDatabase.layer()))
  ),
  { excludeTestServices: true, timeout: "60 seconds" }
)("a client with the driver's codecs", (it) => {
  it.effect("reads take data and event ids binary, and return them as written", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const store = yield* EventStore.EventStore
      const eventId = crypto.randomUUID().toUpperCase()
      yield* store.append("order-2", [{ type: "Placed", data, eventId }])
      const [event] = yield* Stream.runCollect(store.readStream("order-2"))
      assert.deepStrictEqual(event!.data, data)
      assert.strictEqual(event!.eventId, eventId.toLowerCase())
      assert.isTrue(EventRow.columnsOf(sql).binary)
    })
  )
})
