import { assert, layer } from "@effect/vitest"
import { PgSchema } from "@evently/postgres"
import * as PgProjections from "@evently/postgres/PgProjections"
import { Subscriptions } from "@evently/store"
import * as Projection from "@evently/store/Projection"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as SqlClient from "effect/sql/SqlClient"
import * as Registry from "../src/internal/projections/registry.ts"
import { layerSubscriptions } from "./helpers.ts"
import { ItemsV1, ItemsV2, itemsOf, writeItems } from "./projections.ts"

// Version 2's subscription alone, without its switcher: the test decides when the switch is tried.
const consumeV2 = Effect.gen(function* () {
  const subscriptions = yield* Subscriptions.Subscriptions
  const [build] = (yield* PgProjections.builds("items")).filter((b) => b.version === 2)
  return yield* subscriptions.run(
    build!.subscription,
    Projection.handler(ItemsV2, { boundary: { _tag: "Position", position: 0n }, tables: build!.tables }),
    { ...Projection.filterOf(ItemsV2), transactional: true, pollInterval: "50 millis" }
  )
})

const waitFor = (projection: typeof ItemsV1) =>
  Effect.flatMap(Subscriptions.Subscriptions, (subscriptions) =>
    subscriptions.waitUntilCaughtUp(Projection.subscriptionName(projection))
  )

const trySwitch = (wait: number) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const t = yield* PgSchema.Tables
    return yield* Registry.trySwitch(sql, t, ItemsV2, Projection.subscriptionName(ItemsV2), wait)
  })

layer(layerSubscriptions(), { excludeTestServices: true, timeout: "60 seconds" })("PgProjections switch", (it) => {
  it.effect("a new build behind what the active one served does not take over until it has it all", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const t = yield* PgSchema.Tables
      yield* writeItems(1, 10)
      const v1 = yield* Effect.forkChild(PgProjections.run(ItemsV1, { registryPollInterval: "100 millis" }))
      yield* PgProjections.waitUntilCaughtUp("items")

      // Version 2 is registered and catches up with items 1 to 10, then stops; version 1 goes on to item 15.
      yield* Registry.ensureVersion(sql, t, ItemsV2)
      const first = yield* Effect.forkChild(consumeV2)
      yield* waitFor(ItemsV2)
      yield* Fiber.interrupt(first)
      yield* writeItems(11, 15)
      yield* waitFor(ItemsV1)

      // Readers would lose items 11 to 15: no switch, and the view still serves version 1.
      assert.strictEqual(yield* trySwitch(0), "Behind")
      assert.strictEqual((yield* itemsOf("items")).length, 15)
      assert.deepStrictEqual(
        (yield* PgProjections.builds("items")).map((b) => b.state),
        ["active", "building"]
      )

      const second = yield* Effect.forkChild(consumeV2)
      yield* waitFor(ItemsV2)
      assert.strictEqual(yield* trySwitch(0), "Switched")
      assert.strictEqual(yield* trySwitch(0), "Settled")
      const [columns] = yield* sql<{ length: number }>`select length from items where id = 'item-15'`
      assert.strictEqual(columns!.length, "t15".length)
      assert.deepStrictEqual(
        (yield* PgProjections.builds("items")).map((b) => b.state),
        ["retired", "active"]
      )
      yield* Effect.forEach([second, v1], Fiber.interrupt)
    })
  )
})
