/**
 * The seed's task machine. A task is created with a description. After it is created it can be assigned and
 * scheduled, in either order. After both it may be started. After it is started it may be reassigned or rescheduled
 * any number of times, and then canceled or completed (both terminal). Before it is canceled or completed it may be
 * revised at any time; a revised task reverts to the initial state, as a new revision.
 */
import { Accumulate, Machine, Rule } from "@evently/machine"
import * as Schema from "effect/Schema"

const { nothing, event, allOf, anyOf, butNot } = Rule
const { union, keep, alias } = Accumulate

/** The task's events. */
export const TaskEvent = Schema.TaggedUnion({
  Created: { description: Schema.String },
  Assigned: { assignee: Schema.String },
  Scheduled: { deadline: Schema.String },
  Started: {},
  Reassigned: { assignee: Schema.String },
  Rescheduled: { deadline: Schema.String },
  Revised: { description: Schema.String },
  Canceled: {},
  Completed: {}
})

/** One task event. */
export type TaskEvent = typeof TaskEvent.Type

/** The task machine: the rules table of the seed, one line per event type. */
// prettier-ignore
export const TaskMachine = Machine.make(TaskEvent, {
  Created:     { follows: nothing() },
  Assigned:    { follows: allOf("Created", butNot("Assigned")),  accumulate: union(), requires: ["assignee"] },
  Scheduled:   { follows: allOf("Created", butNot("Scheduled")), accumulate: union(), requires: ["deadline"] },
  Started:     { follows: allOf("Assigned", "Scheduled") },
  Reassigned:  { follows: event("Started"), accumulate: keep(), requires: ["assignee"] },
  Rescheduled: { follows: event("Started"), accumulate: keep(), requires: ["deadline"] },
  Revised:     { follows: anyOf("Created", "Started"), accumulate: alias("Created"), restarting: true },
  Canceled:    { follows: event("Started") },
  Completed:   { follows: event("Started") }
})

/** A task's state: control state, revision, event count and the latest value of each field. */
export type TaskState = Machine.StateOf<typeof TaskMachine>

/** Constructors for the task's events. */
export const Task = TaskEvent.cases
