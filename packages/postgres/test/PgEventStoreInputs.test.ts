import { assert, layer } from "@effect/vitest"
import { PgEventStore, PgSchema } from "@evently/postgres"
import { EventStore } from "@evently/store"
import { TestDatabase } from "@evently/testing"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"

/** The tag of the error an effect fails with. */
const tagOf = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.map(Effect.flip(effect), (error) => (error as { readonly _tag: string })._tag)

/** The tag of the error a read fails with. */
const read = <E>(stream: Stream.Stream<EventStore.RecordedEvent, E>) => tagOf(Stream.runDrain(stream))

// No migration: every table is missing, so any statement the store ran would fail with a StoreError. A typed refusal
// here shows the input was checked before any I/O.
layer(TestDatabase.layer({ maxConnections: 2 }), { excludeTestServices: true })(
  "PgEventStore checks names, read options and expectations before any I/O",
  (it) => {
    it.effect("bad input gets its typed error, never the StoreError of a statement", () =>
      Effect.gen(function* () {
        const store = yield* PgEventStore.make().pipe(
          Effect.provideService(PgSchema.Tables, PgSchema.tableNames("nowhere_"))
        )

        assert.strictEqual(yield* tagOf(store.append("cat-\ud800", [{ type: "A", data: 1 }])), "InvalidStreamName")
        assert.strictEqual(yield* read(store.readStream("cat-\udbff")), "InvalidStreamName")
        assert.strictEqual(yield* tagOf(store.streamVersion("cat-\udc00")), "InvalidStreamName")
        assert.strictEqual(yield* read(store.readCategories(["cat", "\ud800"])), "InvalidStreamName")
        assert.strictEqual(yield* read(store.readStream("cat-1", { from: Number.NaN })), "InvalidReadOptions")
        assert.strictEqual(yield* read(store.readStream("cat-1", { limit: -1 })), "InvalidReadOptions")
        assert.strictEqual(yield* read(store.readStream("cat-1", { batchSize: 2 ** 40 })), "InvalidReadOptions")
        assert.strictEqual(yield* read(store.readAll({ after: 2n ** 70n })), "InvalidReadOptions")
        assert.strictEqual(yield* read(store.readCategories(["cat"], { limit: 0.5 })), "InvalidReadOptions")
        const nullExpected = { expected: null } as unknown as EventStore.AppendOptions
        assert.strictEqual(yield* tagOf(store.append("cat-1", [{ type: "A", data: 1 }], nullExpected)), "InvalidEvent")
        assert.strictEqual(yield* tagOf(store.append("cat-1", [], nullExpected)), "InvalidEvent")

        // The same calls with good input do reach the database, and fail there.
        assert.strictEqual(yield* read(store.readStream("cat-1", { from: 1, limit: 1, batchSize: 1 })), "StoreError")
        assert.strictEqual(yield* read(store.readAll({ after: 1n })), "StoreError")
        assert.strictEqual(yield* tagOf(store.append("cat-1", [], {})), "StoreError")
      })
    )
  }
)
