/**
 * What `evently` (the command line, `@evently/cli`) needs to know of the task list: the codec that `verify` decodes
 * the `task` category with, the machine `diagram` and `explore` draw, and the projection `rebuild` builds again.
 * Run from this folder: `pnpm exec evently status`, `pnpm exec evently verify`, `pnpm exec evently explore`.
 */
import { EventlyConfig } from "@evently/cli"
import { TaskCodec } from "./src/TaskCommands.ts"
import { TaskMachine } from "./src/TaskMachine.ts"
import * as TasksByAssignee from "./src/TasksByAssignee.ts"

export default EventlyConfig.define({
  codecs: { task: TaskCodec },
  machines: { task: EventlyConfig.machine(TaskMachine) },
  projections: { [TasksByAssignee.name]: TasksByAssignee.projection }
})
