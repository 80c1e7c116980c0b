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
 * without NUL characters, well-formed Unicode (no lone UTF-16 surrogate), at most {@link maxLength} characters in all.
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
 * Why `input` cannot be a name in the store (a stream name, a category, a subscription or projection name), or
 * `undefined` when it can: it must be a string, without NUL characters, and well-formed Unicode. A lone UTF-16
 * surrogate (`"\ud800"`) is not: Postgres would store it as U+FFFD, so two different names would become one there
 * while the memory store kept them apart. The more specific checks ({@link problem}, {@link categoryProblem}) start
 * with this one; code that validates names of its own (subscriptions) can use it too.
 *
 * @since 0.2.0
 * @category validation
 */
export const textProblem = (input: unknown): string | undefined => {
  if (typeof input !== "string") return `it is not a string but ${input === null ? "null" : typeof input}`
  if (input.includes("\u0000")) return "it contains a NUL character"
  if (!input.isWellFormed()) {
    const at = loneSurrogate(input)
    return (
      `it is not well-formed Unicode: a lone UTF-16 surrogate ` +
      `(U+${input.charCodeAt(at).toString(16).toUpperCase()}) at index ${at}`
    )
  }
  return undefined
}

/** The index of the first code unit of `input` that is a surrogate without its other half. */
const loneSurrogate = (input: string): number => {
  for (let i = 0; i < input.length; i++) {
    const code = input.charCodeAt(i)
    if (code >= 0xd800 && code <= 0xdbff) {
      const next = input.charCodeAt(i + 1)
      if (next >= 0xdc00 && next <= 0xdfff) i++
      else return i
    } else if (code >= 0xdc00 && code <= 0xdfff) return i
  }
  return -1
}

/**
 * Why `input` is not a stream name, or `undefined` when it is one.
 *
 * @since 0.1.0
 * @category validation
 */
export const problem = (input: string): string | undefined => {
  const text = textProblem(input)
  if (text !== undefined) return text
  if (input.length > maxLength) return `it is longer than ${maxLength} characters`
  const dash = input.indexOf("-")
  if (dash === -1) return "it must be category-id (no '-' found)"
  if (dash === 0) return "the category (the part before the first '-') is empty"
  if (!categoryPattern.test(input.slice(0, dash))) {
    return "the category (the part before the first '-') may hold only letters, digits and '_'"
  }
  if (dash === input.length - 1) return "the id (the part after the first '-') is empty"
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
    : Effect.fail(new InvalidStreamName({ stream: String(input), reason }))
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
 * Why `input` is not a category (the part of a stream name before its first `-`: letters, digits and `_`, short
 * enough for a stream name of it to fit in {@link maxLength}), or `undefined` when it is one.
 *
 * @since 0.2.0
 * @category validation
 */
export const categoryProblem = (input: unknown): string | undefined => {
  const text = textProblem(input)
  if (text !== undefined) return text
  const name = input as string
  if (name.length === 0) return "it is empty"
  if (name.length > maxLength - 2) return `it is longer than ${maxLength - 2} characters`
  if (!categoryPattern.test(name)) return "it may hold only letters, digits and '_'"
  return undefined
}

/**
 * Checks a category (of a category read or a subscription's filter), or fails with {@link InvalidStreamName}, whose
 * `stream` is then the category.
 *
 * @since 0.2.0
 * @category constructors
 */
export const parseCategory = (input: string): Effect.Effect<string, InvalidStreamName> => {
  const reason = categoryProblem(input)
  return reason === undefined
    ? Effect.succeed(input)
    : Effect.fail(new InvalidStreamName({ stream: String(input), reason: `as a category, ${reason}` }))
}

/**
 * Whether a string is a valid category name (letters, digits, `_`).
 *
 * @since 0.1.0
 * @category guards
 */
export const isCategory = (input: string): boolean => categoryProblem(input) === undefined
