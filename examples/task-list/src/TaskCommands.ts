/**
 * The task's commands and their decider. `decide` is pure and reads the state: assigning a task that has started
 * reassigns it, scheduling one that has started reschedules it. The machine checks every event `decide` proposes,
 * so starting a task that is not both assigned and scheduled is refused with the machine's own message.
 */
import { Machine } from "@evently/machine"
import { CommandHandler, EventCodec, StreamName } from "@evently/store"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { Task, TaskEvent, TaskMachine, type TaskState } from "./TaskMachine.ts"

/** What a user can ask of a task. */
export const TaskCommand = Schema.TaggedUnion({
  Create: { description: Schema.String },
  Assign: { assignee: Schema.String },
  Schedule: { deadline: Schema.String },
  Start: {},
  Revise: { description: Schema.String },
  Cancel: {},
  Complete: {}
})

/** One task command. */
export type TaskCommand = typeof TaskCommand.Type

/** Constructors for the task's commands. */
export const Command = TaskCommand.cases

const started = (state: TaskState) => state.tags.includes("Started")

/** Proposes the events for a command; the machine then checks them against its rules. */
export const decide = (command: TaskCommand, state: TaskState): Result.Result<ReadonlyArray<TaskEvent>> => {
  switch (command._tag) {
    case "Create":
      return Result.succeed([Task.Created.make({ description: command.description })])
    case "Assign":
      return Result.succeed([
        started(state)
          ? Task.Reassigned.make({ assignee: command.assignee })
          : Task.Assigned.make({ assignee: command.assignee })
      ])
    case "Schedule":
      return Result.succeed([
        started(state)
          ? Task.Rescheduled.make({ deadline: command.deadline })
          : Task.Scheduled.make({ deadline: command.deadline })
      ])
    case "Start":
      return Result.succeed([Task.Started.make({})])
    case "Revise":
      return Result.succeed([Task.Revised.make({ description: command.description })])
    case "Cancel":
      return Result.succeed([Task.Canceled.make({})])
    case "Complete":
      return Result.succeed([Task.Completed.make({})])
  }
}

/** The task decider the command handler runs: `decide` above, checked by the task machine. */
export const TaskDecider = Machine.decider(TaskMachine, decide)

/** How task events are stored: `_tag` as the event type, the other fields as JSON data. */
export const TaskCodec = EventCodec.make(TaskEvent)

/** The category of the task streams: a task's stream is `task-<id>`. */
export const category = "task"

/** The stream of one task, built and checked by `StreamName` (an id it cannot name fails with `InvalidStreamName`). */
export const streamOf = (id: string) => StreamName.make(category, id)

/**
 * The tasks' command handler, as a service: declared once, taken from the context wherever a task command is handled
 * (`const tasks = yield* Tasks; yield* tasks.handle(stream, Command.Start.make({}))`); `Tasks.layer` builds it on
 * the `EventStore` in context.
 */
export class Tasks extends CommandHandler.Service<Tasks>()("task-list/Tasks", {
  decider: TaskDecider,
  codec: TaskCodec
}) {}
