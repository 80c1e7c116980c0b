/**
 * Given/when/then specifications for deciders and machines:
 * `given(events).when(command).then(events)`, `.thenFails(tag)` (typed: one of the decider's error tags, returning that
 * error) and `.thenNothingHappens()`. A failed expectation throws an assertion error with a readable diff of expected
 * and actual events (or errors); a specification awaited or yielded by mistake throws a message saying how to end it.
 *
 * @since 0.1.0
 */
import type * as Decider from "@evently/machine/Decider"
import * as Result from "effect/Result"
import { expect } from "vitest"

/**
 * The `_tag`s of an error type (any string when the type has none, as for `unknown`).
 *
 * @since 0.2.0
 * @category models
 */
export type TagOf<Error> = [Error extends { readonly _tag: infer Tag extends string } ? Tag : never] extends [never]
  ? string
  : Error extends { readonly _tag: infer Tag extends string }
    ? Tag
    : never

/**
 * The member of an error union with the given `_tag` (the whole type when none has one).
 *
 * @since 0.2.0
 * @category models
 */
export type ErrorWithTag<Error, Tag extends string> = [Extract<Error, { readonly _tag: Tag }>] extends [never]
  ? Error
  : Extract<Error, { readonly _tag: Tag }>

/**
 * The last step of a specification: what deciding the command must produce. It is neither a promise nor an Effect:
 * call one of its methods directly (never `await` or `yield*` it).
 *
 * @since 0.1.0
 * @category models
 */
export interface Then<Event, Error> {
  /** The command produces exactly these events, in order. */
  readonly then: (events: ReadonlyArray<Event>) => void
  /**
   * The command is refused with the error whose `_tag` is `tag` (one of the decider's error tags), which `check`
   * (when given) may assert on further; returns that error, typed. Or: the command is refused with an error that
   * `check` accepts (a predicate returning `false`, or an assertion that throws, rejects it).
   */
  readonly thenFails: {
    <const Tag extends TagOf<Error>>(
      tag: Tag,
      check?: (error: ErrorWithTag<Error, Tag>) => boolean | void
    ): ErrorWithTag<Error, Tag>
    (check: (error: Error) => boolean | void): Error
  }
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

const misuse = (how: string) =>
  new Error(
    `DeciderSpec: a specification was ${how}, but it is neither a promise nor an Effect. End it with ` +
      "`.then([...events])`, `.thenFails(tag)` or `.thenNothingHappens()`, called directly (no `await`, no `yield*`): " +
      "the expectation is checked synchronously and throws when it does not hold."
  )

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
      const thenFails = (
        tagOrCheck: string | ((error: Error) => boolean | void),
        check?: (error: never) => boolean | void
      ) => {
        const expected = typeof tagOrCheck === "string" ? tagOrCheck : "an error the check accepts"
        if (Result.isSuccess(decided)) {
          expect(actual, `the command should fail with ${expected} (${decidedText})`).toEqual({
            error: typeof tagOrCheck === "string" ? { _tag: tagOrCheck } : expected
          })
          throw new Error(`expected the command to fail with ${expected}`)
        }
        const error = decided.failure
        if (typeof tagOrCheck === "string") {
          expect(describeError(error), `the command should fail with ${expected} (${decidedText})`).toMatchObject({
            _tag: tagOrCheck
          })
        }
        const predicate = typeof tagOrCheck === "string" ? check : tagOrCheck
        if (predicate !== undefined && (predicate as (error: Error) => boolean | void)(error) === false) {
          throw new Error(`the command failed with an error the check rejects (${decidedText})`)
        }
        return error
      }
      const then: Then<Event, Error> = {
        // oxlint-disable-next-line unicorn/no-thenable -- given/when/then is the vocabulary; a misplaced await is caught below
        then: (events) => {
          if (typeof events === "function") throw misuse("awaited (or used as a promise)")
          expect(actual, `the events decided for the command (${decidedText})`).toEqual({ events })
        },
        thenNothingHappens: () => {
          expect(actual, `the command should be accepted and produce no events (${decidedText})`).toEqual({
            events: []
          })
        },
        thenFails: thenFails as Then<Event, Error>["thenFails"]
      }
      // `yield*` of a specification (in Effect.gen) asks for an iterator: say what to do instead.
      return Object.assign(then, {
        [Symbol.iterator]: (): never => {
          throw misuse("yielded with `yield*`")
        }
      })
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
