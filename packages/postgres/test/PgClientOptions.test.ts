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
import * as String from "effect/String"
import * as EventRow from "../src/internal/eventRow.ts"

// An app's client may be configured in ways that change what its queries return: name transforms (with
// `transformJson`, the keys inside JSON values too) and codecs of its own. The store's reads must return an event's
// data and metadata as written whatever the client does to its own queries.

/** The store and subscriptions on a fresh database, through a client with `client`'s options. */
const storesOn = (client?: Parameters<typeof TestDatabase.layer>[0]) =>
  Layer.mergeAll(PgEventStore.layer(), PgSubscriptions.layer()).pipe(
    Layer.provideMerge(Layer.provideMerge(PgSchema.layerMigrate, TestDatabase.layer(client)))
  )

/** The first event a subscription from the beginning delivers. */
const firstDelivered = (name: string) =>
  Effect.gen(function* () {
    const subscriptions = yield* Subscriptions.Subscriptions
    const seen = yield* Deferred.make<EventStore.RecordedEvent>()
    const fiber = yield* Effect.forkChild(
      subscriptions.run(name, (event) => Deferred.succeed(seen, event), { start: Subscriptions.Beginning })
    )
    const event = yield* Deferred.await(seen)
    yield* Fiber.interrupt(fiber)
    return event
  })

const options = { excludeTestServices: true, timeout: "60 seconds" } as const

const transforms = storesOn({
  client: { transformResultNames: String.snakeToCamel, transformQueryNames: String.camelToSnake, transformJson: true }
})

layer(transforms, options)("a client with name transforms", (it) => {
  // Reads take rows as values, which no transform touches.
  it.effect("reads, log reads and subscriptions return data and metadata with their keys as written", () =>
    Effect.gen(function* () {
      const data = { first_name: "Ada", address: { street_name: "Main", house_no: 1 }, tags: [{ tag_name: "x" }] }
      const metadata = { correlationId: "c-1", headers: { trace_id: "t-1" } }
      const store = yield* EventStore.EventStore
      const sql = yield* SqlClient.SqlClient
      yield* store.append("person-1", [{ type: "Registered", data, metadata }])
      // What the transforms do to a plain query's rows: the keys inside the JSON are renamed too.
      const [plain] = yield* sql<{ data: unknown }>`select data from ${sql(PgSchema.tableNames().events)}`
      assert.deepStrictEqual(plain!.data, {
        firstName: "Ada",
        address: { streetName: "Main", houseNo: 1 },
        tags: [{ tagName: "x" }]
      })
      const check = (event: EventStore.RecordedEvent | undefined, path: string) => {
        assert.isDefined(event, path)
        assert.deepStrictEqual(event!.data, data, path)
        assert.deepStrictEqual(event!.metadata, metadata, path)
      }
      check((yield* Stream.runCollect(store.readStream("person-1")))[0], "readStream")
      check((yield* Stream.runCollect(store.readCategories(["person"])))[0], "readCategories")
      check((yield* Stream.runCollect(store.readAll()))[0], "readAll")
      check(yield* firstDelivered("transforms"), "subscription")
    })
  )
})

// A `jsonb` codec of the app's own: a reviver that makes a `Date` of every ISO timestamp string. Reads detect it
// (EventRow.probe) and take `data` as text, so an event's data comes back as it was written and a retried append
// still finds its events the same.
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

const dated = { placedAt: "2024-01-02T03:04:05.678Z", lines: [{ sku: "a", at: "2024-05-06T07:08:09Z" }] }

layer(storesOn({ client: { types: reviving } }), options)("a client with its own jsonb codec", (it) => {
  it.effect("reads return data as written, a retried append finds its events, and reads are as text", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const store = yield* EventStore.EventStore
      // What the codec does to a plain query: the strings become dates.
      const [plain] = yield* sql<{ j: { placedAt: unknown } }>`select ${JSON.stringify(dated)}::text::jsonb as j`
      assert.instanceOf(plain!.j.placedAt, Date)

      const events = [{ type: "Placed", data: dated, eventId: crypto.randomUUID() }]
      const first = yield* store.append("order-1", events, { expected: ExpectedVersion.NoStream })
      const retried = yield* store.append("order-1", events, { expected: ExpectedVersion.NoStream })
      assert.deepStrictEqual(retried, first)
      assert.deepStrictEqual((yield* Stream.runCollect(store.readStream("order-1")))[0]!.data, dated)
      assert.deepStrictEqual((yield* Stream.runCollect(store.readAll()))[0]!.data, dated)
      assert.deepStrictEqual((yield* firstDelivered("codecs")).data, dated)
      assert.isFalse(EventRow.columnsOf(sql).binary)
    })
  )
})

// The driver's own codecs: the probe lets reads take `data` and the id binary.
layer(storesOn(), options)("a client with the driver's codecs", (it) => {
  it.effect("reads take data and event ids binary, and return them as written", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const store = yield* EventStore.EventStore
      const eventId = crypto.randomUUID().toUpperCase()
      yield* store.append("order-2", [{ type: "Placed", data: dated, eventId }])
      const [event] = yield* Stream.runCollect(store.readStream("order-2"))
      assert.deepStrictEqual(event!.data, dated)
      assert.strictEqual(event!.eventId, eventId.toLowerCase())
      assert.isTrue(EventRow.columnsOf(sql).binary)
    })
  )
})
