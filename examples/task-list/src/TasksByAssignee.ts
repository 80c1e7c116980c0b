/**
 * A read model of tasks by assignee: a table projection of the task events. Readers query the view
 * `tasks_by_assignee`; each version of the projection writes its own table behind it (`tasks_by_assignee_v1`, ...),
 * and its writes commit with its checkpoint, so the table never misses or repeats an event.
 *
 * Version 2 also counts the tasks in each status (table `task_counts`): deployed beside version 1, it is built from
 * the beginning while version 1 keeps serving, and takes over once it has caught up (see docs/projections.md).
 */
import * as PgProjections from "@evently/postgres/PgProjections"
import * as Projection from "@evently/store/Projection"
import * as Effect from "effect/Effect"
import * as SqlClient from "effect/sql/SqlClient"
import { TaskCodec } from "./TaskCommands.ts"

/** The projection's name: its builds' subscriptions are `projection:tasks_by_assignee:v<version>`. */
export const name = "tasks_by_assignee"

/** The view readers query. */
export const table = "tasks_by_assignee"

/** One row of the read model. */
export interface Row {
  readonly task: string
  readonly description: string
  readonly assignee: string | null
  readonly deadline: string | null
  readonly status: string
}

const tasksTable: Projection.TableDefinition = (sql, physical) =>
  sql`create table ${sql(physical)} (
    task text primary key,
    description text not null,
    assignee text,
    deadline text,
    status text not null
  )`

const countsTable: Projection.TableDefinition = (sql, physical) =>
  sql`create table ${sql(physical)} (status text primary key, tasks integer not null)`

const make = (version: 1 | 2) => {
  const tasksOf = (ctx: Projection.HandlerContext) => ctx.tables[table]!
  // Version 2 moves the task from its old status's count to the new one's.
  const count = Effect.fnUntraced(function* (ctx: Projection.HandlerContext, from: string | undefined, to: string) {
    if (version === 1 || from === to) return
    const sql = yield* SqlClient.SqlClient
    const counts = ctx.tables["task_counts"]!
    if (from !== undefined) yield* sql`update ${sql(counts)} set tasks = tasks - 1 where status = ${from}`
    yield* sql`insert into ${sql(counts)} (status, tasks) values (${to}, 1)
      on conflict (status) do update set tasks = ${sql(counts)}.tasks + 1`
  })
  const statusOf = Effect.fnUntraced(function* (ctx: Projection.HandlerContext) {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{ status: string }>`select status from ${sql(tasksOf(ctx))}
      where task = ${ctx.recorded.stream}`
    return row?.status
  })
  const setStatus = Effect.fnUntraced(function* (ctx: Projection.HandlerContext, status: string) {
    const sql = yield* SqlClient.SqlClient
    const from = yield* statusOf(ctx)
    yield* sql`update ${sql(tasksOf(ctx))} set status = ${status} where task = ${ctx.recorded.stream}`
    yield* count(ctx, from, status)
  })
  const update = (ctx: Projection.HandlerContext, column: "assignee" | "deadline", value: string) =>
    Effect.flatMap(
      SqlClient.SqlClient,
      (sql) => sql`update ${sql(tasksOf(ctx))} set ${sql(column)} = ${value} where task = ${ctx.recorded.stream}`
    )
  return Projection.make({
    name,
    version,
    tables: version === 1 ? { [table]: tasksTable } : { [table]: tasksTable, task_counts: countsTable },
    sources: [
      Projection.on("task", TaskCodec, {
        Created: (event, ctx) =>
          Effect.gen(function* () {
            const sql = yield* SqlClient.SqlClient
            const from = yield* statusOf(ctx)
            yield* sql`insert into ${sql(tasksOf(ctx))} (task, description, status)
              values (${ctx.recorded.stream}, ${event.description}, 'open')
              on conflict (task) do update set description = excluded.description, status = 'open'`
            yield* count(ctx, from, "open")
          }),
        Assigned: (event, ctx) => update(ctx, "assignee", event.assignee),
        Reassigned: (event, ctx) => update(ctx, "assignee", event.assignee),
        Scheduled: (event, ctx) => update(ctx, "deadline", event.deadline),
        Rescheduled: (event, ctx) => update(ctx, "deadline", event.deadline),
        Started: (_, ctx) => setStatus(ctx, "in progress"),
        // A revised task starts over: unassigned, unscheduled, open.
        Revised: (event, ctx) =>
          Effect.gen(function* () {
            const sql = yield* SqlClient.SqlClient
            yield* sql`update ${sql(tasksOf(ctx))} set description = ${event.description}, assignee = null,
              deadline = null where task = ${ctx.recorded.stream}`
            yield* setStatus(ctx, "open")
          }),
        Canceled: (_, ctx) => setStatus(ctx, "canceled"),
        Completed: (_, ctx) => setStatus(ctx, "done")
      })
    ]
  })
}

/** Version 1: the tasks by assignee. */
export const projection = make(1)

/** Version 2: also the number of tasks in each status, in `task_counts`. */
export const projectionV2 = make(2)

/** Runs the projection (version 1) until interrupted: creates its table the first time, keeps it up to date. */
export const run = PgProjections.run(projection)

/** Waits until the projection's active version has handled every task event committed before the call. */
export const waitUntilCaughtUp = PgProjections.waitUntilCaughtUp(name, { timeout: "30 seconds" })

/** The rows of the given tasks, by assignee (unassigned last), then by task. */
export const rows = Effect.fnUntraced(function* (tasks: ReadonlyArray<string>) {
  const sql = yield* SqlClient.SqlClient
  return yield* sql<Row>`select task, description, assignee, deadline, status from ${sql(table)}
    where task = any(${tasks}::text[]) order by assignee nulls last, task`
})

/** The number of tasks in each status (version 2's `task_counts`), by status. */
export const counts = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  return yield* sql<{ status: string; tasks: number }>`select status, tasks from task_counts where tasks > 0
    order by status`
})
