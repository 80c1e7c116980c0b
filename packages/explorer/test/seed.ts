/**
 * The explorer's test data: a database of its own with a small task machine's streams, an order chain correlated
 * across three streams, a stream of 120 events (three pages), a stream whose data tries to become markup, and a
 * subscription with a parked event.
 */
import * as Graph from "@evently/machine/Graph"
import * as Machine from "@evently/machine/Machine"
import * as Rule from "@evently/machine/Rule"
import { PgEventStore, PgSchema } from "@evently/postgres"
import { EventCodec, EventStore, Projection } from "@evently/store"
import { TestDatabase } from "@evently/testing"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as SqlClient from "effect/sql/SqlClient"

const TaskEvent = Schema.TaggedUnion({
  Created: { title: Schema.String },
  Started: {},
  Paused: {},
  Completed: {}
})

/** The task machine: Created, then Started, Paused and Started again (as often as wanted), then Completed. */
export const TaskMachine = Machine.make(TaskEvent, {
  Created: { follows: Rule.nothing() },
  Started: { follows: Rule.anyOf(Rule.event("Created"), Rule.event("Paused")) },
  Paused: { follows: Rule.event("Started") },
  Completed: { follows: Rule.event("Started") }
})

/** A table projection of each task's title, for the rebuild action. */
export const TaskTitles = Projection.make({
  name: "task_titles",
  version: 1,
  tables: {
    task_titles: (sql, table) => sql`create table ${sql(table)} (stream text primary key, title text not null)`
  },
  sources: [
    Projection.on("task", EventCodec.make(TaskEvent), {
      Created: (event, context) =>
        Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          const table = context.tables.task_titles!
          yield* sql`insert into ${sql(table)} (stream, title) values (${context.recorded.stream}, ${event.title})`
        }),
      Started: () => Effect.void,
      Paused: () => Effect.void,
      Completed: () => Effect.void
    })
  ]
})

/** The machines as the explorer takes them. */
export const machines = { task: { graph: Graph.make(TaskMachine) } }

/** Strings that would run or break out of an attribute if they reached the page as markup. */
export const hostile = {
  script: "<script>window.__pwned = 'script'</script>",
  attribute: `"><img src=x onerror="window.__pwned='img'">`,
  closing: "</td></tr></table><b id=injected>bold</b>"
} as const

/** The correlation id of the order chain. */
export const correlationId = "corr-order-1"

/** The ids of the seeded events the tests look for. */
export const ids = {
  orderPlaced: "00000000-0000-4000-8000-000000000001",
  paymentTaken: "00000000-0000-4000-8000-000000000002",
  shipped: "00000000-0000-4000-8000-000000000003"
} as const

/** The subscription with a parked event. */
export const subscription = "order-emails"

const seed = Effect.gen(function* () {
  const store = yield* EventStore.EventStore
  const sql = yield* SqlClient.SqlClient
  const t = yield* PgSchema.Tables
  yield* store.append("task-1", [
    { type: "Created", data: { title: "write the explorer" } },
    { type: "Started", data: {} },
    { type: "Paused", data: {} },
    { type: "Started", data: {} }
  ])
  yield* store.append("task-2", [{ type: "Created", data: { title: "review it" } }])
  yield* store.append("order-1", [
    { type: "OrderPlaced", data: { total: 42 }, eventId: ids.orderPlaced, metadata: { correlationId } }
  ])
  yield* store.append("payment-1", [
    {
      type: "PaymentTaken",
      data: { amount: 42 },
      eventId: ids.paymentTaken,
      metadata: { correlationId, causationId: ids.orderPlaced }
    }
  ])
  yield* store.append("order-1", [
    { type: "OrderShipped", data: {}, eventId: ids.shipped, metadata: { correlationId, causationId: ids.paymentTaken } }
  ])
  yield* store.append(
    "log-big",
    Array.from({ length: 120 }, (_, i) => ({ type: "Ticked", data: { n: i + 1 } }))
  )
  yield* store.append("evil-1", [
    {
      type: "Commented",
      data: { text: hostile.script, title: hostile.attribute, html: hostile.closing },
      metadata: { headers: { note: hostile.attribute } }
    }
  ])
  const [placed] = yield* sql<{ position: string; tx: string }>`
    select position::text as position, transaction_id::text as tx from ${sql(t.events)} where event_id = ${ids.orderPlaced}::uuid`
  yield* sql`insert into ${sql(t.checkpoints)}
    (subscription, partition, partitions, transaction_id, position, system_identifier, xid_epoch)
    values (${subscription}, 0, 1, pg_current_xact_id(), 1000000, 0, 0)`
  yield* sql`insert into ${sql(t.parked)} (subscription, partition, position, transaction_id, event_id, stream, event_type, error)
    values (${subscription}, 0, ${placed!.position}::bigint, ${placed!.tx}::xid8, ${ids.orderPlaced}::uuid, 'order-1',
      'OrderPlaced', ${`SMTP refused: ${hostile.script}`})`
})

/** A migrated database of its own, seeded, with the event store on it. */
export const layer = Layer.effectDiscard(seed).pipe(
  Layer.provideMerge(PgEventStore.layer()),
  Layer.provideMerge(
    PgSchema.layerMigrate.pipe(Layer.orDie, Layer.provideMerge(TestDatabase.layer({ maxConnections: 8 })))
  )
)
