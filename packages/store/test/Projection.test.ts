import { assert, describe, it } from "@effect/vitest"
import { EventCodec, EventStore, Subscriptions } from "@evently/store"
import * as Projection from "@evently/store/Projection"
import * as ReplayBoundary from "@evently/store/ReplayBoundary"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type * as SqlClient from "effect/sql/SqlClient"

const Events = Schema.TaggedUnion({
  Opened: { owner: Schema.String },
  Deposited: { amount: Schema.Number },
  Closed: {}
})
const Codec = EventCodec.make(Events)

const Memory = Layer.mergeAll(Subscriptions.layerMemory, ReplayBoundary.layerMemory).pipe(
  Layer.provideMerge(EventStore.layerMemory)
)

const append = (stream: string, events: ReadonlyArray<typeof Events.Type>) =>
  Effect.flatMap(EventCodec.typedStore(Codec), (store) => store.append(stream, events))

const define = (sql: SqlClient.SqlClient, table: string) => sql`create table ${sql(table)} (id text)`

describe("Projection", () => {
  it("compiles handlers only for the codec's tags, narrowed to the tag (compiled by tsc -b)", () => {
    const source = Projection.on("account", Codec, {
      // The event is narrowed: `amount` exists on Deposited only.
      Deposited: (event) => Effect.sync(() => assert.isNumber(event.amount))
    })
    const unknownTag = () =>
      Projection.on("account", Codec, {
        Opened: () => Effect.void,
        // @ts-expect-error "Renamed" is not a tag of the codec
        Renamed: () => Effect.void
      })
    const wrongField = () =>
      Projection.on("account", Codec, {
        // @ts-expect-error Opened has no `amount`
        Opened: (event) => Effect.sync(() => event.amount)
      })
    assert.strictEqual(typeof unknownTag, "function")
    assert.strictEqual(typeof wrongField, "function")
    assert.deepStrictEqual(source.eventTypes, ["Deposited"])
  })

  it("types the tables' names in the handlers of Projection.tables(...).on (compiled by tsc -b)", () => {
    const tables = Projection.tables({ ledger: (sql, table) => sql`create table ${sql(table)} (id text)` })
    const source = tables.on("account", Codec, {
      Opened: (_, ctx) => Effect.sync(() => ctx.tables.ledger.length),
      // @ts-expect-error "journal" is not a declared table
      Closed: (_, ctx) => Effect.sync(() => ctx.tables.journal)
    })
    const projection = Projection.make({ name: "ledger", version: 1, tables, sources: [source] })
    assert.deepStrictEqual(Object.keys(projection.tables), ["ledger"])
    assert.deepStrictEqual(projection.eventTypes, ["Opened", "Closed"])
  })

  it("derives its categories and event types from the handlers", () => {
    const projection = Projection.make({
      name: "balances",
      version: 1,
      sources: [
        Projection.on("account", Codec, { Opened: () => Effect.void, Closed: () => Effect.void }),
        Projection.on("savings", Codec, { Deposited: () => Effect.void, Closed: () => Effect.void })
      ]
    })
    assert.deepStrictEqual(projection.categories, ["account", "savings"])
    assert.deepStrictEqual(projection.eventTypes, ["Opened", "Closed", "Deposited"])
    assert.strictEqual(Projection.subscriptionName(projection), "projection:balances:v1")
    assert.strictEqual(Projection.subscriptionName(projection, 3), "projection:balances:v1b3")
  })

  it("refuses a declaration that cannot run, saying why", () => {
    const source = Projection.on("account", Codec, { Opened: () => Effect.void })
    const reasons = [
      Projection.problem(Projection.make({ name: "Bad-Name", version: 1, sources: [source] })),
      Projection.problem(Projection.make({ name: "ok", version: 0, sources: [source] })),
      Projection.problem(Projection.make({ name: "ok", version: 1, sources: [] })),
      Projection.problem(Projection.make({ name: "ok", version: 1, sources: [source, source] })),
      Projection.problem(
        Projection.make({ name: "ok", version: 1, sources: [source], tables: { "x-y": () => Effect.void } })
      )
    ]
    assert.match(reasons[0]!, /the name "Bad-Name" must be/)
    assert.match(reasons[1]!, /the version must be a whole number/)
    assert.match(reasons[2]!, /no source/)
    assert.match(reasons[3]!, /two sources handle 'Opened' events of category 'account'/)
    assert.match(reasons[4]!, /the table name "x-y"/)
    assert.isUndefined(Projection.problem(Projection.make({ name: "ok", version: 1, sources: [source] })))
  })

  it("refuses a table name that could be a build's physical table, or a table without a definition", () => {
    const source = Projection.on("account", Codec, { Opened: () => Effect.void })
    const withTables = (tables: Record<string, Projection.TableDefinition>) =>
      Projection.problem(Projection.make({ name: "ok", version: 1, sources: [source], tables }))
    // `items` v1 writes `items_v1`, the physical table that the view `items_v1` would replace at the switch.
    assert.match(withTables({ items: define, items_v1: define })!, /"items_v1" must not end like a build's physical/)
    assert.match(withTables({ items_v2b3: define })!, /"items_v2b3" must not end like/)
    assert.match(withTables({ items: "create table" as never })!, /the table 'items' needs a definition/)
    // `drop view if exists pg_class` finds pg_catalog's table first: the switch would fail on it every time.
    assert.match(withTables({ pg_class: define })!, /"pg_class" must not start with 'pg_'/)
    assert.isUndefined(withTables({ items: define, items_v: define, v1: define, items_v1x: define }))
  })

  it("dispatches only to its own handlers: an event typed like an Object.prototype member is not handled", () =>
    Effect.gen(function* () {
      const source = Projection.on("account", Codec, { Opened: () => Effect.void })
      const recorded = { type: "toString", category: "account", data: {} } as unknown as EventStore.RecordedEvent
      const exit = yield* Effect.exit(source.handle(recorded, { recorded, replaying: false, tables: {} }))
      assert.strictEqual(exit._tag, "Success")
    }).pipe(Effect.runPromise))

  it("rejects a handler for an unknown tag passed through a variable (compiled by tsc -b)", () => {
    const handlers = { Opened: () => Effect.void, Renamed: () => Effect.void }
    const widened: Record<string, () => Effect.Effect<void>> = { Opened: () => Effect.void }
    const viaVariable = () =>
      // @ts-expect-error "Renamed" is not a tag of the codec, even when the handlers are a variable
      Projection.on("account", Codec, handlers)
    const viaRecord = () =>
      // @ts-expect-error a record of any string key may hold tags that are not the codec's
      Projection.on("account", Codec, widened)
    assert.strictEqual(typeof viaVariable, "function")
    assert.strictEqual(typeof viaRecord, "function")
  })

  it.live("runs as a consumer on memory: typed events, replaying for history only, decode failures parked", () =>
    Effect.gen(function* () {
      const seen: Array<string> = []
      const projection = Projection.make({
        name: "ledger",
        version: 1,
        sources: [
          Projection.on("account", Codec, {
            Opened: (event, ctx) =>
              Effect.sync(() => seen.push(`${ctx.recorded.stream} opened by ${event.owner} ${ctx.replaying}`)),
            Deposited: (event, ctx) =>
              Effect.sync(() => seen.push(`${ctx.recorded.stream} +${event.amount} ${ctx.replaying}`))
          })
        ]
      })
      yield* append("account-1", [Events.cases.Opened.make({ owner: "ada" })])
      const store = yield* EventStore.EventStore
      // A Deposited whose data does not decode, and an event of a type the projection does not read.
      yield* store.append("account-1", [{ type: "Deposited", data: { amount: "ten" } }])
      yield* append("account-1", [Events.cases.Closed.make({})])
      const fiber = yield* Effect.forkChild(Projection.run(projection, { onError: Subscriptions.Skip }))
      yield* Projection.waitUntilCaughtUp(projection)
      yield* append("account-1", [Events.cases.Deposited.make({ amount: 5 })])
      yield* Projection.waitUntilCaughtUp(projection)
      const phases = yield* Stream.runCollect(Stream.take(Projection.lifecycle(projection), 1))
      assert.deepStrictEqual(
        phases.map((event) => [event.subscription, event.phase._tag]),
        [["projection:ledger:v1", "CaughtUp"]]
      )
      yield* Fiber.interrupt(fiber)

      assert.deepStrictEqual(seen, ["account-1 opened by ada true", "account-1 +5 false"])
      const subscriptions = yield* Subscriptions.Subscriptions
      const parked = yield* subscriptions.parked(Projection.subscriptionName(projection))
      assert.deepStrictEqual(
        parked.map((event) => [event.type, event.error.includes("does not decode")]),
        [["Deposited", true]]
      )

      // A restart keeps the boundary recorded at the first start: nothing is history again.
      const again = yield* Effect.forkChild(Projection.run(projection, { onError: Subscriptions.Skip }))
      yield* append("account-1", [Events.cases.Deposited.make({ amount: 7 })])
      yield* Projection.waitUntilCaughtUp(projection)
      yield* Fiber.interrupt(again)
      assert.deepStrictEqual(seen.at(-1), "account-1 +7 false")
    }).pipe(Effect.provide(Memory))
  )

  it.live("an ephemeral consumer starts over on each run, with its own boundary", () =>
    Effect.gen(function* () {
      const seen: Array<string> = []
      const projection = Projection.make({
        name: "view",
        version: 1,
        sources: [
          Projection.on("account", Codec, {
            Deposited: (event, ctx) => Effect.sync(() => seen.push(`${event.amount} ${ctx.replaying}`))
          })
        ]
      })
      yield* append("account-2", [Events.cases.Deposited.make({ amount: 1 })])
      for (const amount of [2, 3]) {
        const fiber = yield* Effect.forkChild(Projection.run(projection, { ephemeral: true }))
        yield* Projection.waitUntilCaughtUp(projection)
        yield* append("account-2", [Events.cases.Deposited.make({ amount })])
        yield* Projection.waitUntilCaughtUp(projection)
        yield* Fiber.interrupt(fiber)
      }
      assert.deepStrictEqual(seen, ["1 true", "2 false", "1 true", "2 true", "3 false"])
    }).pipe(Effect.provide(Memory))
  )

  it("reads a Postgres snapshot as a boundary", () => {
    const boundary = ReplayBoundary.fromSnapshotText("10:15:11,13")
    assert.strictEqual(boundary._tag, "Some")
    const at = (transactionId: bigint) =>
      ReplayBoundary.isReplay(boundary._tag === "Some" ? boundary.value : { _tag: "Position", position: 0n }, {
        transactionId,
        position: 1n
      } as EventStore.RecordedEvent)
    assert.deepStrictEqual([9n, 10n, 11n, 12n, 13n, 14n, 15n, 16n].map(at), [
      true,
      true,
      false,
      true,
      false,
      true,
      false,
      false
    ])
    assert.strictEqual(ReplayBoundary.fromSnapshotText("nonsense")._tag, "None")
  })
})
