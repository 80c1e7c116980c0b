import { assert, describe, it } from "@effect/vitest"
import { EventCodec, EventStore, ExpectedVersion } from "@evently/store"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Schema from "effect/Schema"
import * as SchemaTransformation from "effect/SchemaTransformation"
import * as Stream from "effect/Stream"

// Yesterday's events: Renamed carried `name` (schema version 1).
const OldEvents = Schema.Union([
  Schema.TaggedStruct("Created", { title: Schema.String }),
  Schema.TaggedStruct("Renamed", { name: Schema.String })
])
const oldCodec = EventCodec.make(OldEvents)

// Version 2 renamed `name` to `title`.
const RenamedV2 = Schema.Struct({ title: Schema.String })
const v2Codec = EventCodec.make(
  Schema.Union([
    Schema.TaggedStruct("Created", { title: Schema.String }),
    Schema.TaggedStruct("Renamed", { title: Schema.String })
  ]),
  { versions: { Renamed: 2 } }
)

// Today (version 3) also says why; a new type appeared; titles may not be empty.
const Events = Schema.Union([
  Schema.TaggedStruct("Created", { title: Schema.NonEmptyString }),
  Schema.TaggedStruct("Renamed", { title: Schema.String, reason: Schema.String }),
  Schema.TaggedStruct("Archived", { at: Schema.Int })
])
type Event = typeof Events.Type

const v1ToV2 = Schema.Struct({ name: Schema.String }).pipe(
  Schema.decodeTo(
    RenamedV2,
    SchemaTransformation.transform({
      decode: (v1) => ({ title: v1.name }),
      encode: (v2) => ({ name: v2.title })
    })
  )
)
const v2ToV3 = RenamedV2.pipe(
  Schema.decodeTo(
    Schema.Struct({ title: Schema.String, reason: Schema.String }),
    SchemaTransformation.transform({
      decode: (v2) => ({ title: v2.title, reason: "(not recorded before v3)" }),
      encode: (v3) => ({ title: v3.title })
    })
  )
)
const codec = EventCodec.make(Events, { versions: { Renamed: 3 }, upcasters: { Renamed: { 1: v1ToV2, 2: v2ToV3 } } })

const collect = <A, E, R>(stream: Stream.Stream<A, E, R>) => Effect.map(Stream.runCollect(stream), (c) => [...c])

describe("EventCodec", () => {
  it.effect("encodes _tag as the type and the other fields as data, with the type's schema version", () =>
    Effect.gen(function* () {
      const store = yield* EventStore.makeMemory
      const typed = EventCodec.typed(store, codec)
      const events: ReadonlyArray<Event> = [
        { _tag: "Created", title: "write codecs" },
        { _tag: "Renamed", title: "write typed codecs", reason: "precision" },
        { _tag: "Archived", at: 3 }
      ]
      const id = crypto.randomUUID()
      const result = yield* typed.append("task-1", [events[0]!, { event: events[1]!, eventId: id }, events[2]!], {
        expected: ExpectedVersion.NoStream
      })
      assert.strictEqual(result.version, 3)
      const raw = yield* collect(store.readStream("task-1"))
      assert.deepStrictEqual(
        raw.map((e) => [e.type, e.schemaVersion, e.data]),
        [
          ["Created", 1, { title: "write codecs" }],
          ["Renamed", 3, { title: "write typed codecs", reason: "precision" }],
          ["Archived", 1, { at: 3 }]
        ]
      )
      assert.strictEqual(raw[1]!.eventId, id)
      const read = yield* collect(typed.readStream("task-1"))
      assert.deepStrictEqual(
        read.map((e) => e.event),
        events
      )
      assert.deepStrictEqual(
        read.map((e) => [e.streamVersion, e.position]),
        raw.map((e) => [e.streamVersion, e.position])
      )
      assert.deepStrictEqual(
        (yield* collect(typed.readCategories(["task"]))).map((e) => e.event._tag),
        ["Created", "Renamed", "Archived"]
      )
    })
  )

  it.effect("upcasts rows written by older codecs through each version's Schema transformation", () =>
    Effect.gen(function* () {
      const store = yield* EventStore.makeMemory
      yield* EventCodec.typed(store, oldCodec).append("task-7", [
        { _tag: "Created", title: "old" },
        { _tag: "Renamed", name: "from v1" }
      ])
      yield* EventCodec.typed(store, v2Codec).append("task-7", [{ _tag: "Renamed", title: "from v2" }])
      const raw = yield* collect(store.readStream("task-7"))
      assert.deepStrictEqual(
        raw.map((e) => e.schemaVersion),
        [1, 1, 2]
      )
      const read = yield* collect(EventCodec.typed(store, codec).readAll())
      assert.deepStrictEqual(
        read.map((e) => e.event),
        [
          { _tag: "Created", title: "old" },
          { _tag: "Renamed", title: "from v1", reason: "(not recorded before v3)" },
          { _tag: "Renamed", title: "from v2", reason: "(not recorded before v3)" }
        ]
      )
      // Each read decodes from the stored row: the row itself is never rewritten.
      assert.deepStrictEqual(
        (yield* collect(store.readStream("task-7"))).map((e) => e.data),
        raw.map((e) => e.data)
      )
    })
  )

  it.effect("a row that does not decode fails the read with EventDecodeError naming it, never a defect", () =>
    Effect.gen(function* () {
      const store = yield* EventStore.makeMemory
      const typed = EventCodec.typed(store, codec)
      const cases: ReadonlyArray<readonly [string, EventStore.NewEvent, RegExp]> = [
        ["wrong field type", { type: "Created", data: { title: 5 } }, /title/],
        ["empty title", { type: "Created", data: { title: "" } }, /./],
        ["unknown type", { type: "Mystery", data: {} }, /./],
        ["newer schema version", { type: "Renamed", schemaVersion: 4, data: { title: "x", reason: "y" } }, /up to 3/],
        [
          "old row that does not upcast",
          { type: "Renamed", schemaVersion: 1, data: { nom: "x" } },
          /upcasting from schema version 1/
        ],
        ["not an object", { type: "Archived", data: [1] }, /not an object/]
      ]
      for (const [label, row, issue] of cases) {
        const stream = `bad-${label.replaceAll(" ", "_")}`
        const [result] = (yield* store.append(stream, [row])).positions
        const error = yield* Effect.flip(Stream.runCollect(typed.readStream(stream)))
        assert.strictEqual(error._tag, "EventDecodeError", label)
        if (error._tag === "EventDecodeError") {
          assert.strictEqual(error.position, result, label)
          assert.strictEqual(error.stream, stream, label)
          assert.strictEqual(error.type, row.type, label)
          assert.strictEqual(error.schemaVersion, row.schemaVersion ?? 1, label)
          assert.match(error.issue, issue, label)
          assert.include(error.message, `position ${result}`)
        }
      }
      const withoutUpcaster = EventCodec.make(Events, { versions: { Renamed: 3 } })
      yield* store.append("task-9", [{ type: "Renamed", data: { name: "v1" } }])
      const missing = yield* Effect.flip(
        Stream.runCollect(EventCodec.typed(store, withoutUpcaster).readStream("task-9"))
      )
      assert.match(missing._tag === "EventDecodeError" ? missing.issue : "", /no upcaster from schema version 1 to 2/)
    })
  )

  it.effect("a read delivers, in order, every event before one that does not decode and none after it", () =>
    Effect.gen(function* () {
      const store = yield* EventStore.makeMemory
      // Current, upcast, current, upcast again, then a row that does not decode, then one that would.
      yield* store.append("task-3", [
        { type: "Created", data: { title: "a" } },
        { type: "Renamed", schemaVersion: 1, data: { name: "b" } },
        { type: "Archived", data: { at: 1 } },
        { type: "Renamed", schemaVersion: 2, data: { title: "c" } },
        { type: "Created", data: { title: 7 } },
        { type: "Archived", data: { at: 2 } }
      ])
      const typed = EventCodec.typed(store, codec)
      const expected: Array<Event> = [
        { _tag: "Created", title: "a" },
        { _tag: "Renamed", title: "b", reason: "(not recorded before v3)" },
        { _tag: "Archived", at: 1 },
        { _tag: "Renamed", title: "c", reason: "(not recorded before v3)" }
      ]
      // Pages of every size: the bad row first in a page, in its middle, after an upcast event, and alone.
      for (const batchSize of [1, 2, 3, 4, 5, 6, 100]) {
        const seen: Array<Event> = []
        const error = yield* Effect.flip(
          Stream.runForEach(typed.readStream("task-3", { batchSize }), (e) => Effect.sync(() => seen.push(e.event)))
        )
        assert.deepStrictEqual(seen, expected, `batch size ${batchSize}`)
        assert.deepStrictEqual(
          error._tag === "EventDecodeError" && [error.position, error.schemaVersion],
          [5n, 1],
          `batch size ${batchSize}`
        )
      }
      // A read that stops before the bad row never meets it.
      assert.deepStrictEqual(
        (yield* collect(typed.readStream("task-3", { limit: 4, batchSize: 3 }))).map((e) => e.event),
        expected
      )
    })
  )

  it.effect("an upcaster that throws ends the read with its defect, after every event before it", () =>
    Effect.gen(function* () {
      const throwing = Schema.Struct({ name: Schema.String }).pipe(
        Schema.decodeTo(
          RenamedV2,
          SchemaTransformation.transform({
            decode: (v1) => {
              if (v1.name === "boom") throw new Error("upcaster bug")
              return { title: v1.name }
            },
            encode: (v2) => ({ name: v2.title })
          })
        )
      )
      const fragile = EventCodec.make(Events, {
        versions: { Renamed: 3 },
        upcasters: { Renamed: { 1: throwing, 2: v2ToV3 } }
      })
      const store = yield* EventStore.makeMemory
      yield* store.append("task-4", [
        { type: "Created", data: { title: "a" } },
        { type: "Renamed", schemaVersion: 1, data: { name: "b" } },
        { type: "Renamed", schemaVersion: 1, data: { name: "boom" } },
        { type: "Archived", data: { at: 1 } }
      ])
      for (const batchSize of [1, 2, 3, 100]) {
        const seen: Array<Event> = []
        const exit = yield* Effect.exit(
          Stream.runForEach(EventCodec.typed(store, fragile).readStream("task-4", { batchSize }), (e) =>
            Effect.sync(() => seen.push(e.event))
          )
        )
        assert.deepStrictEqual(
          seen,
          [
            { _tag: "Created", title: "a" },
            { _tag: "Renamed", title: "b", reason: "(not recorded before v3)" }
          ],
          `batch size ${batchSize}`
        )
        assert.isTrue(
          Exit.isFailure(exit) && Cause.pretty(exit.cause).includes("upcaster bug"),
          `batch size ${batchSize}: ${String(exit)}`
        )
      }
    })
  )

  it.effect("event types named like Object.prototype members have schema version 1 and round-trip", () =>
    Effect.gen(function* () {
      const Odd = Schema.Union([
        Schema.TaggedStruct("constructor", { n: Schema.Int }),
        Schema.TaggedStruct("toString", { n: Schema.Int })
      ])
      const odd = EventCodec.make(Odd, { versions: {} })
      assert.deepStrictEqual(
        [odd.versionOf("constructor"), odd.versionOf("toString"), odd.versionOf("hasOwnProperty")],
        [1, 1, 1]
      )
      const store = yield* EventStore.makeMemory
      const typed = EventCodec.typed(store, odd)
      yield* typed.append("odd-1", [
        { _tag: "constructor", n: 1 },
        { _tag: "toString", n: 2 }
      ])
      assert.deepStrictEqual(
        (yield* collect(typed.readStream("odd-1"))).map((e) => [e.event, e.schemaVersion]),
        [
          [{ _tag: "constructor", n: 1 }, 1],
          [{ _tag: "toString", n: 2 }, 1]
        ]
      )
    })
  )

  it.effect("an event that does not encode is refused as InvalidEvent and nothing is written", () =>
    Effect.gen(function* () {
      const store = yield* EventStore.makeMemory
      const typed = EventCodec.typed(store, codec)
      const error = yield* Effect.flip(
        typed.append("task-3", [
          { _tag: "Created", title: "fine" },
          { _tag: "Created", title: "" }
        ])
      )
      assert.strictEqual(error._tag, "InvalidEvent")
      assert.deepStrictEqual(error._tag === "InvalidEvent" && [error.index, error.type], [1, "Created"])
      assert.strictEqual(yield* typed.streamVersion("task-3"), 0)
    })
  )

  it.effect("typedStore views the EventStore in context", () =>
    Effect.gen(function* () {
      const typed = yield* EventCodec.typedStore(codec)
      yield* typed.append("task-5", [{ _tag: "Archived", at: 1 }])
      const [read] = yield* collect(typed.readStream("task-5"))
      assert.deepStrictEqual(read!.event, { _tag: "Archived", at: 1 })
    }).pipe(Effect.provide(EventStore.layerMemory))
  )
})
