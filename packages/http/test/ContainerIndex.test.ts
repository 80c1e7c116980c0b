import { assert, layer } from "@effect/vitest"
import { ContainerIndex } from "@evently/http"
import { PgEventStore, PgSchema, PgSubscriptions } from "@evently/postgres"
import { EventCodec, EventStore } from "@evently/store"
import { TestDatabase } from "@evently/testing"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as SqlClient from "effect/sql/SqlClient"
import { TaskEvent, TaskMachine } from "../../../examples/task-list/src/TaskMachine.ts"

const database = PgSchema.layerMigrate.pipe(Layer.orDie, Layer.provideMerge(TestDatabase.layer({ maxConnections: 8 })))
const stores = Layer.mergeAll(
  PgEventStore.layer(),
  PgSubscriptions.layer({ lockRetryInterval: "100 millis", reconnectDelay: "100 millis" })
).pipe(Layer.provideMerge(database))

const options = { category: "job", machine: TaskMachine, codec: EventCodec.make(TaskEvent) }

/** The ids and control states the index lists. */
const listed = (index: ContainerIndex.ContainerIndex) =>
  Effect.map(index.list({ limit: 100 }), (page) => page.items.map((entry) => [entry.id, [...entry.state]]))

layer(stores, { excludeTestServices: true, timeout: "60 seconds" })("ContainerIndex on Postgres", (it) => {
  it.effect("is durable: a restart goes on from its checkpoint, under the same name, without replaying", () =>
    Effect.gen(function* () {
      const store = yield* EventStore.EventStore
      const sql = yield* SqlClient.SqlClient
      yield* store.append("job-a", [{ type: "Created", data: { description: "a" } }])
      yield* store.append("job-b", [{ type: "Created", data: { description: "b" } }])
      const first = yield* Effect.scoped(
        Effect.gen(function* () {
          const index = yield* ContainerIndex.make(options)
          yield* index.waitUntilCaughtUp({ timeout: "20 seconds" })
          return { subscription: index.subscription, items: yield* listed(index) }
        })
      )
      assert.strictEqual(first.subscription, "http-index-job")
      assert.deepStrictEqual(first.items, [
        ["a", ["Created"]],
        ["b", ["Created"]]
      ])
      // Were the category replayed at the next start, the row taken out here would come back.
      yield* sql`delete from evently_container_index where category = 'job' and id = 'a'`
      yield* store.append("job-b", [{ type: "Assigned", data: { assignee: "ada" } }])
      yield* store.append("job-c", [{ type: "Created", data: { description: "c" } }])
      const second = yield* Effect.scoped(
        Effect.gen(function* () {
          const index = yield* ContainerIndex.make(options)
          yield* index.waitUntilCaughtUp({ timeout: "20 seconds" })
          return yield* listed(index)
        })
      )
      assert.deepStrictEqual(second, [
        ["b", ["Created", "Assigned"]],
        ["c", ["Created"]]
      ])
      const checkpoints = yield* sql<{ subscription: string }>`
        select subscription from evently_checkpoints where subscription = 'http-index-job'`
      assert.strictEqual(checkpoints.length, 1)
    })
  )
})
