import { assert, layer } from "@effect/vitest"
import { PgEventStore, PgSchema, PgSubscriptions } from "@evently/postgres"
import { EventStore, Subscriptions } from "@evently/store"
import { TestDatabase } from "@evently/testing"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as SqlClient from "effect/sql/SqlClient"
import * as Stream from "effect/Stream"
import * as String from "effect/String"

// An app's client may rename columns (snake_case to camelCase) and, with `transformJson`, the keys inside JSON values.
// The store's reads take rows as values, which no transform touches: an event's data and metadata come back as written.
const database = TestDatabase.layer({
  client: {
    transformResultNames: String.snakeToCamel,
    transformQueryNames: String.camelToSnake,
    transformJson: true
  }
})
const migrated = Layer.provideMerge(PgSchema.layerMigrate, database)
const stores = Layer.mergeAll(PgEventStore.layer(), PgSubscriptions.layer()).pipe(Layer.provideMerge(migrated))

const data = { first_name: "Ada", address: { street_name: "Main", house_no: 1 }, tags: [{ tag_name: "x" }] }
const metadata = { correlationId: "c-1", headers: { trace_id: "t-1" } }

layer(stores, { excludeTestServices: true, timeout: "60 seconds" })("a client with name transforms", (it) => {
  it.effect("reads, log reads and subscriptions return data and metadata with their keys as written", () =>
    Effect.gen(function* () {
      const store = yield* EventStore.EventStore
      const subscriptions = yield* Subscriptions.Subscriptions
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
      const seen = yield* Deferred.make<EventStore.RecordedEvent>()
      const fiber = yield* Effect.forkChild(
        subscriptions.run("transforms", (event) => Deferred.succeed(seen, event), { start: Subscriptions.Beginning })
      )
      check(yield* Deferred.await(seen), "subscription")
      yield* Fiber.interrupt(fiber)
    })
  )
})
