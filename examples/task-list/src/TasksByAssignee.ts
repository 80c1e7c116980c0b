/**
 * A read model of tasks by assignee, kept in a table of the same database by a subscription. Each batch's writes
 * commit with the subscription's checkpoint (`transactional: true`), so the table never misses or repeats an event.
 */
import type { EventStore } from "@evently/store"
import { Subscriptions } from "@evently/store"
import * as Effect from "effect/Effect"
import * as SqlClient from "effect/sql/SqlClient"
import { TaskCodec } from "./TaskCommands.ts"

/** The subscription's name: its checkpoint lives in `evently_checkpoints` under it. */
export const subscription = "tasks-by-assignee"

/** The table's name. */
export const table = "tasks_by_assignee"

/** One row of the read model. */
export interface Row {
  readonly task: string
  readonly description: string
  readonly assignee: string | null
  readonly deadline: string | null
  readonly status: string
}

/** Creates the table when it is not there yet (the read model's own migration). */
export const migrate = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`create table if not exists ${sql(table)} (
    task text primary key,
    description text not null,
    assignee text,
    deadline text,
    status text not null
  )`
})

/** Folds one recorded task event into the table. */
export const project = Effect.fnUntraced(function* (recorded: EventStore.RecordedEvent) {
  const sql = yield* SqlClient.SqlClient
  const event = yield* TaskCodec.decode(recorded)
  const task = recorded.stream
  switch (event._tag) {
    case "Created":
      yield* sql`insert into ${sql(table)} (task, description, status) values (${task}, ${event.description}, 'open')
        on conflict (task) do update set description = excluded.description, status = 'open'`
      return
    case "Assigned":
    case "Reassigned":
      yield* sql`update ${sql(table)} set assignee = ${event.assignee} where task = ${task}`
      return
    case "Scheduled":
    case "Rescheduled":
      yield* sql`update ${sql(table)} set deadline = ${event.deadline} where task = ${task}`
      return
    case "Started":
      yield* sql`update ${sql(table)} set status = 'in progress' where task = ${task}`
      return
    case "Revised":
      // A revised task starts over: unassigned, unscheduled, open.
      yield* sql`update ${sql(table)} set description = ${event.description}, assignee = null, deadline = null,
        status = 'open' where task = ${task}`
      return
    case "Canceled":
      yield* sql`update ${sql(table)} set status = 'canceled' where task = ${task}`
      return
    case "Completed":
      yield* sql`update ${sql(table)} set status = 'done' where task = ${task}`
      return
  }
})

/** Runs the projection until interrupted: task events only, each batch committed with its checkpoint. */
export const run = Effect.gen(function* () {
  const subscriptions = yield* Subscriptions.Subscriptions
  return yield* subscriptions.run(subscription, project, { categories: ["task"], transactional: true })
})

/** Waits until the projection has handled every task event committed before the call. */
export const waitUntilCaughtUp = Effect.gen(function* () {
  const subscriptions = yield* Subscriptions.Subscriptions
  yield* subscriptions.waitUntilCaughtUp(subscription, { timeout: "30 seconds" })
})

/** The rows of the given tasks, by assignee (unassigned last), then by task. */
export const rows = Effect.fnUntraced(function* (tasks: ReadonlyArray<string>) {
  const sql = yield* SqlClient.SqlClient
  return yield* sql<Row>`select task, description, assignee, deadline, status from ${sql(table)}
    where task = any(${tasks}::text[]) order by assignee nulls last, task`
})
