/**
 * Given/when/then specifications for deciders and machines:
 * `given(events).when(command).then(events)`, `.thenFails(tag)` and `.thenNothingHappens()`. A failed expectation
 * throws an assertion error with a readable diff of expected and actual events (or errors).
 *
 * @since 0.1.0
 */
import type * as Decider from "@evently/machine/Decider"
import * as Result from "effect/Result"
import { expect } from "vitest"

/**
 * The last step of a specification: what deciding the command must produce.
 *
 * @since 0.1.0
 * @category models
 */
export interface Then<Event, Error> {
  /** The command produces exactly these events, in order. */
  readonly then: (events: ReadonlyArray<Event>) => void
  /** The command is refused with an error whose `_tag` is `tag`; returns the error for further checks. */
  readonly thenFails: (tag: string) => Error
  /** The command is accepted and produces no events. */
  readonly thenNothingHappens: () => void
}

/**
 * The middle step of a specification: the command to decide.
 *
 * @since 0.1.0
 * @category models
 */
export interface When<Command, Event, Error> {
  readonly when: (command: Command) => Then<Event, Error>
}

/**
 * A specification bound to one decider: `given(events)` starts from the state those events fold into.
 *
 * @since 0.1.0
 * @category models
 */
export interface Spec<Command, Event, Error> {
  readonly given: (events: ReadonlyArray<Event>) => When<Command, Event, Error>
}

const describeError = (error: unknown): unknown =>
  typeof error === "object" && error !== null && "_tag" in error
    ? { _tag: error._tag, message: error instanceof Error ? error.message : undefined }
    : error

/**
 * Binds a specification to a decider. A machine is a decider whose command is the list of proposed events, so
 * `make(machine).given([...]).when([event]).then([event, ...autos])` specifies a machine directly.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <Command, Event, State, Error>(
  decider: Decider.Decider<Command, Event, State, Error>
): Spec<Command, Event, Error> => ({
  given: (history) => ({
    when: (command) => {
      let state = decider.initial
      for (const event of history) state = decider.evolve(state, event)
      const decided = decider.decide(command, state)
      const actual = Result.isSuccess(decided) ? { events: decided.success } : { error: describeError(decided.failure) }
      const decidedText = `decided ${JSON.stringify(actual)}`
      return {
        // oxlint-disable-next-line unicorn/no-thenable -- given/when/then is the vocabulary; specs are never awaited
        then: (events) => {
          expect(actual, `the events decided for the command (${decidedText})`).toEqual({ events })
        },
        thenNothingHappens: () => {
          expect(actual, `the command should be accepted and produce no events (${decidedText})`).toEqual({
            events: []
          })
        },
        thenFails: (tag) => {
          if (Result.isSuccess(decided)) {
            expect(actual, `the command should fail with ${tag} (${decidedText})`).toEqual({ error: { _tag: tag } })
            throw new Error(`expected the command to fail with ${tag}`)
          }
          expect(describeError(decided.failure), `the command should fail with ${tag} (${decidedText})`).toMatchObject({
            _tag: tag
          })
          return decided.failure
        }
      }
    }
  })
})

/**
 * Starts a specification from a decider and a history in one call: `given(decider, events).when(command)`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const given = <Command, Event, State, Error>(
  decider: Decider.Decider<Command, Event, State, Error>,
  events: ReadonlyArray<Event>
): When<Command, Event, Error> => make(decider).given(events)
