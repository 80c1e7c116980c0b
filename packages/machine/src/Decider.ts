/**
 * The decider shape (`initial`, `decide`, `evolve`) that a command handler runs against a stream. A machine is one
 * (see `Machine.decider`), and so is any hand-written decider.
 *
 * @since 0.1.0
 */
import type * as Result from "effect/Result"

/**
 * A pure decider: `decide` turns a command and the current state into events (or a domain error); `evolve` folds an
 * event into the state, starting from `initial`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Decider<Command, Event, State, Error> {
  readonly initial: State
  readonly decide: (command: Command, state: State) => Result.Result<ReadonlyArray<Event>, Error>
  readonly evolve: (state: State, event: Event) => State
}

/**
 * Folds events into a state with a decider's `evolve`, from its `initial` state.
 *
 * @since 0.1.0
 * @category folding
 */
export const fold = <Command, Event, State, Error>(
  decider: Decider<Command, Event, State, Error>,
  events: Iterable<Event>
): State => {
  let state = decider.initial
  for (const event of events) state = decider.evolve(state, event)
  return state
}
