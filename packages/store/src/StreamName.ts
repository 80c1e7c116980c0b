/**
 * Stream names of the form `category-id`: the category is the part before the first `-`.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

const categoryPattern = /^[A-Za-z0-9_]+$/

/**
 * The longest stream name accepted, in characters: long enough for any real id, short enough for a btree index.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxLength = 512

/**
 * A stream name that has been checked: `category-id`, a category of letters, digits and underscores, a non-empty id
 * without NUL characters, at most {@link maxLength} characters in all.
 *
 * @since 0.1.0
 * @category models
 */
export type StreamName = string & { readonly StreamName: unique symbol }

/**
 * Raised before any I/O when a string is not a valid stream name; `reason` says what is wrong with it.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidStreamName extends Schema.TaggedError<InvalidStreamName>("@evently/store/InvalidStreamName")(
  "InvalidStreamName",
  { stream: Schema.String, reason: Schema.String }
) {
  override get message(): string {
    return `Invalid stream name ${JSON.stringify(this.stream.length > 80 ? `${this.stream.slice(0, 80)}…` : this.stream)}: ${this.reason}`
  }
}

/**
 * Why `input` is not a stream name, or `undefined` when it is one.
 *
 * @since 0.1.0
 * @category validation
 */
export const problem = (input: string): string | undefined => {
  if (input.length > maxLength) return `it is longer than ${maxLength} characters`
  const dash = input.indexOf("-")
  if (dash === -1) return "it must be category-id (no '-' found)"
  if (dash === 0) return "the category (the part before the first '-') is empty"
  if (!categoryPattern.test(input.slice(0, dash))) {
    return "the category (the part before the first '-') may hold only letters, digits and '_'"
  }
  if (dash === input.length - 1) return "the id (the part after the first '-') is empty"
  if (input.includes("\u0000")) return "it contains a NUL character"
  return undefined
}

/**
 * Checks a string and returns it as a {@link StreamName}, or fails with {@link InvalidStreamName}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const parse = (input: string): Effect.Effect<StreamName, InvalidStreamName> => {
  const reason = problem(input)
  return reason === undefined
    ? Effect.succeed(input as StreamName)
    : Effect.fail(new InvalidStreamName({ stream: input, reason }))
}

/**
 * Whether a string is a valid stream name.
 *
 * @since 0.1.0
 * @category guards
 */
export const is = (input: string): input is StreamName => problem(input) === undefined

/**
 * Builds `category-id` from its parts, checking both.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (category: string, id: string): Effect.Effect<StreamName, InvalidStreamName> =>
  parse(`${category}-${id}`)

/**
 * The category of a stream: the part of its name before the first `-`.
 *
 * @since 0.1.0
 * @category accessors
 */
export const category = (stream: StreamName): string => stream.slice(0, stream.indexOf("-"))

/**
 * The id of a stream: the part of its name after the first `-`.
 *
 * @since 0.1.0
 * @category accessors
 */
export const id = (stream: StreamName): string => stream.slice(stream.indexOf("-") + 1)

/**
 * Whether a string is a valid category name (letters, digits, `_`).
 *
 * @since 0.1.0
 * @category guards
 */
export const isCategory = (input: string): boolean => categoryPattern.test(input)
