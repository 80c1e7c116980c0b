/**
 * Plays a short story through the task machine, shows an illegal event refused, and prints the Mermaid diagram.
 * Run with `pnpm example`.
 */
import { Graph } from "@evently/machine"
import * as Result from "effect/Result"
import { Task, TaskMachine, type TaskEvent, type TaskState } from "./src/TaskMachine.ts"

const story: ReadonlyArray<TaskEvent> = [
  Task.Created.make({ description: "Write the quarterly report" }),
  Task.Scheduled.make({ deadline: "2030-03-31" }),
  Task.Assigned.make({ assignee: "ada" }),
  Task.Started.make({}),
  Task.Reassigned.make({ assignee: "grace" }),
  Task.Revised.make({ description: "Write the short quarterly report" }),
  Task.Assigned.make({ assignee: "grace" })
]

const show = (state: TaskState) => `[${state.tags.join(", ")}] v${state.version} ${JSON.stringify(state.data)}`

let state = TaskMachine.initial
console.log("A task's story:")
for (const event of story) {
  const next = TaskMachine.transition(state, event)
  if (Result.isFailure(next)) throw next.failure
  state = next.success
  console.log(`  ${event._tag.padEnd(11)} -> ${show(state)}`)
}

console.log("\nStarting it now is refused, because it was revised and is not scheduled again:")
const refused = TaskMachine.transition(state, Task.Started.make({}))
if (Result.isSuccess(refused)) throw new Error("Started should have been refused")
console.log(`  ${refused.failure._tag}: ${refused.failure.message}`)

console.log("\nThe machine, as a Mermaid diagram:\n")
console.log(Graph.toMermaid(TaskMachine))
