/**
 * The task list, end to end: tasks are created, assigned, scheduled and started through the command handler on
 * PostgreSQL (the embedded PGlite unless `DATABASE_URL` or a `PG*` variable names a server); a table projection keeps
 * the `tasks_by_assignee` read model up to date, committing its writes with its checkpoint; two commands race on one task
 * and the handler retries the loser; an illegal transition is refused with the machine's message; then it prints
 * the read model and the machine's Mermaid diagram. Run with `pnpm example`. Last, it prints where its time went:
 * starting Node and loading the modules, starting the database, migrating, the example itself, shutting down.
 */
// The runner alone: the package's index would load its HTTP server and clients too, ~0.7 s more at start.
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Graph } from "@evently/machine"
import { Database, PgliteClient } from "@evently/pglite"
import { PgEventStore, PgSchema, PgSubscriptions } from "@evently/postgres"
import { CommandHandler, EventStore } from "@evently/store"
import * as Console from "effect/Console"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { Command, TaskCodec, TaskDecider, type TaskCommand } from "./src/TaskCommands.ts"
import { TaskMachine, type TaskState } from "./src/TaskMachine.ts"
import * as TasksByAssignee from "./src/TasksByAssignee.ts"

const describeCommand = (command: TaskCommand): string => {
  switch (command._tag) {
    case "Create":
    case "Revise":
      return `${command._tag} "${command.description}"`
    case "Assign":
      return `Assign ${command.assignee}`
    case "Schedule":
      return `Schedule ${command.deadline}`
    default:
      return command._tag
  }
}

const showState = (state: TaskState) => `[${state.tags.join(", ")}]`

/**
 * The event store, seen by the two racing commands: each one's first append waits until both have appended once,
 * i.e. until both have read the stream and decided. So they really race on every run and on either database (on
 * PGlite, whose one session runs statements one at a time, an unforced race could come out either way).
 */
const racingStore = Effect.gen(function* () {
  const store = yield* EventStore.EventStore
  const bothDecided = yield* Deferred.make<void>()
  let arrived = 0
  const refusals: Array<string> = []
  const gated = EventStore.EventStore.of({
    ...store,
    append: (stream, events, options) =>
      Effect.gen(function* () {
        arrived++
        if (arrived === 2) yield* Deferred.succeed(bothDecided, undefined)
        yield* Deferred.await(bothDecided)
        return yield* store
          .append(stream, events, options)
          .pipe(
            Effect.tapError((error) =>
              error._tag === "WrongExpectedVersion" ? Effect.sync(() => refusals.push(error.message)) : Effect.void
            )
          )
      })
  })
  return { gated, refusals }
})

/**
 * Where the time went: each step's end, in order, in milliseconds since the process started (`performance.now()`,
 * the process's own monotonic clock, which is what "since the process started" needs and `Clock` does not give).
 * Each step is the time from the previous step's end to its own, so the steps add up to the whole.
 */
const steps: Array<readonly [step: string, at: number]> = []
const stepDone = (step: string) =>
  Effect.sync(() => {
    steps.push([step, performance.now()])
  })

/** One line: `Timing: a 1 ms + b 2 ms = 3 ms`, each step rounded from the rounded ends, so the parts add up. */
const timing = (): string => {
  let previous = 0
  const parts = steps.map(([step, at]) => {
    const end = Math.round(at)
    const part = `${step} ${end - previous} ms`
    previous = end
    return part
  })
  return `Timing: ${parts.join(" + ")} = ${previous} ms`
}

const program = Effect.gen(function* () {
  yield* stepDone("database start")
  yield* PgSchema.migrate
  yield* stepDone("migrations")
  yield* Effect.forkScoped(TasksByAssignee.run)

  const tasks = yield* CommandHandler.make({ decider: TaskDecider, codec: TaskCodec })
  // Fresh task ids on every run, so a shared database can run the example again and again.
  const run = crypto.randomUUID().slice(0, 8)
  const report = `task-${run}-1`
  const budget = `task-${run}-2`
  const offsite = `task-${run}-3`
  const venue = `task-${run}-4`
  const names: Record<string, string> = { [report]: "#1", [budget]: "#2", [offsite]: "#3", [venue]: "#4" }

  const send = Effect.fnUntraced(function* (task: string, command: TaskCommand) {
    const handled = yield* tasks.handle(task, command)
    yield* Console.log(
      `  ${names[task]} ${describeCommand(command).padEnd(38)} v${handled.version} ${showState(handled.state)}`
    )
    return handled
  })

  yield* Console.log(`Commands, through the command handler (streams task-${run}-1 to -4):`)
  yield* send(report, Command.Create.make({ description: "Write the quarterly report" }))
  yield* send(report, Command.Assign.make({ assignee: "ada" }))
  yield* send(report, Command.Schedule.make({ deadline: "2030-03-31" }))
  yield* send(report, Command.Start.make({}))
  yield* send(budget, Command.Create.make({ description: "Review the budget" }))
  yield* send(budget, Command.Schedule.make({ deadline: "2030-02-28" }))
  yield* send(budget, Command.Assign.make({ assignee: "grace" }))
  yield* send(budget, Command.Start.make({}))
  yield* send(budget, Command.Complete.make({}))
  yield* send(offsite, Command.Create.make({ description: "Plan the offsite" }))
  yield* send(offsite, Command.Assign.make({ assignee: "ada" }))
  yield* send(venue, Command.Create.make({ description: "Book the venue" }))
  yield* send(venue, Command.Schedule.make({ deadline: "2030-05-01" }))

  // A conflict: two commands on #1 at once. Both read version 4; the first append wins, the second is refused
  // with WrongExpectedVersion, and the handler reloads, decides again and appends. (A handler's commands on one stream
  // take turns by default, so in one process they race only as here, with `oneAtATimePerStream: false`; two
  // processes race like this.)
  const race = yield* racingStore
  const racing = yield* CommandHandler.make({
    decider: TaskDecider,
    codec: TaskCodec,
    oneAtATimePerStream: false
  }).pipe(Effect.provideService(EventStore.EventStore, race.gated))
  const contenders = [Command.Assign.make({ assignee: "grace" }), Command.Schedule.make({ deadline: "2030-04-15" })]
  yield* Console.log(`\nA conflict: ${contenders.map(describeCommand).join(" and ")} on #1 at once, both reading v4:`)
  const results = yield* Effect.forEach(contenders, (command) => racing.handle(report, command), {
    concurrency: "unbounded"
  })
  for (const [index, handled] of results.entries()) {
    const attempts = `${handled.attempts} attempt${handled.attempts === 1 ? "" : "s"}`
    yield* Console.log(
      `  ${describeCommand(contenders[index]!).padEnd(20)} -> ${handled.events.map((e) => e._tag).join(", ")} ` +
        `at v${handled.version} after ${attempts}`
    )
  }
  for (const refusal of race.refusals) yield* Console.log(`  retried after: ${refusal}`)

  // An illegal transition: #3 is assigned but not scheduled, so it may not start. Nothing is written.
  yield* Console.log("\nAn illegal transition:")
  const refused = yield* Effect.flip(tasks.handle(offsite, Command.Start.make({})))
  const after = yield* tasks.load(offsite)
  yield* Console.log(`  #3 Start -> refused: ${refused.message} (#3 stays at v${after.version})`)

  // The read model, once the projection has handled everything committed so far.
  yield* TasksByAssignee.waitUntilCaughtUp
  const rows = yield* TasksByAssignee.rows([report, budget, offsite, venue])
  yield* Console.log(
    `\nTasks by assignee (view ${TasksByAssignee.table}, kept by projection '${TasksByAssignee.name}' version ${TasksByAssignee.projection.version}):`
  )
  let assignee: string | null | undefined
  for (const row of rows) {
    if (row.assignee !== assignee) {
      assignee = row.assignee
      yield* Console.log(`  ${assignee ?? "(unassigned)"}`)
    }
    const due = row.deadline === null ? "" : `, due ${row.deadline}`
    yield* Console.log(`    ${names[row.task]} ${row.description.padEnd(28)} ${row.status}${due}`)
  }

  yield* Console.log(`\nThe task machine, as a Mermaid diagram:\n\n${Graph.toMermaid(TaskMachine)}`)
  yield* stepDone("the example")
})

const Stores = Layer.mergeAll(PgEventStore.layer(), PgSubscriptions.layer())

/**
 * The whole run: the first step's end is when Node has started and every module is loaded; the database layer is
 * built around the example and shut down after it, so "shutdown" ends once the database is closed.
 */
const main = Effect.gen(function* () {
  yield* stepDone("process start")
  // The embedded database is Postgres compiled to WebAssembly, and V8's optimizing compiler would spend seconds on
  // its largest function in the background, which this short run would then wait for at exit. A process-wide V8
  // setting, so the app chooses it, before the database starts: see PgliteClient.raiseWasmTieringBudget.
  yield* PgliteClient.raiseWasmTieringBudget()
  yield* program.pipe(Effect.scoped, Effect.provide(Stores.pipe(Layer.provideMerge(Database.layer))))
  yield* stepDone("shutdown")
  yield* Console.log(`\n${timing()}`)
})

// Runs as the process's main fiber: a failure is reported and exits with code 1, Ctrl+C interrupts the run (closing
// the database), and a success lets the process end by itself.
NodeRuntime.runMain(main)
