/**
 * The task list over HTTP, through its commands: `POST /tasks/{id}/{Command}` for each command of `TaskCommand`
 * (`Create`, `Assign`, `Schedule`, `Start`, `Revise`, `Cancel`, `Complete`; the body is the command's fields), decided
 * by `decide` and checked by the task machine before anything is stored, and `GET /tasks/{id}`. Raw events are not
 * accepted: add `rawEvents: { machine: TaskMachine }` to take them (checked by the machine only).
 */
import { CommandApi } from "@evently/http"
import * as Schema from "effect/Schema"
import { TaskCommand, Tasks } from "./TaskCommands.ts"

/** A task as the API sends it: its control state, revision, event count and the latest value of each field. */
export const TaskStateSchema = Schema.Struct({
  tags: Schema.Array(
    Schema.Literals([
      "Created",
      "Assigned",
      "Scheduled",
      "Started",
      "Reassigned",
      "Rescheduled",
      "Revised",
      "Canceled",
      "Completed"
    ])
  ),
  revision: Schema.Int,
  eventCount: Schema.Int,
  data: Schema.Struct({
    description: Schema.optionalKey(Schema.String),
    assignee: Schema.optionalKey(Schema.String),
    deadline: Schema.optionalKey(Schema.String)
  })
}).annotate({ identifier: "Task" })

/** The tasks resource: commands in, tasks out. */
export const TaskApi = CommandApi.make({
  name: "tasks",
  handler: Tasks,
  commands: TaskCommand,
  state: TaskStateSchema,
  title: "Task list"
})
