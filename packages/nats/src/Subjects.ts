/**
 * The JetStream subject of each relayed event: `<prefix>.<category>.<type>` by default, microcosm-style
 * `<prefix>.created.<category>.<type>` as an option, or any function of the event. Also the subject filters a consumer
 * uses for categories and event types, and the check that a stream's subjects cover a subject.
 *
 * @since 0.1.0
 */
import type * as EventStore from "@evently/store/EventStore"
import * as Schema from "effect/Schema"

/**
 * A function from a recorded event to the subject it is published on.
 *
 * @since 0.1.0
 * @category models
 */
export type SubjectOf = (event: EventStore.RecordedEvent) => string

/**
 * A subject function returned a subject NATS cannot publish to (empty, an empty token, a wildcard, whitespace).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidSubject extends Schema.TaggedError<InvalidSubject>("@evently/nats/InvalidSubject")(
  "InvalidSubject",
  { subject: Schema.String, eventId: Schema.String, reason: Schema.String }
) {
  override get message(): string {
    return `Subject ${JSON.stringify(this.subject)} for event ${this.eventId} cannot be published to: ${this.reason}`
  }
}

/**
 * The default prefix of subjects.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultPrefix = "evently"

/**
 * One subject token from any text: every character that cannot stand in a token (`.`, `*`, `>`, whitespace and
 * control characters) becomes `_`; an empty text becomes `_`. Categories are already tokens; event types may not be.
 *
 * @since 0.1.0
 * @category constructors
 */
export const token = (text: string): string => (text.length === 0 ? "_" : text.replace(/[.*>\s\p{Cc}]/gu, "_"))

/**
 * `<prefix>.<category>.<type>`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const byCategoryAndType =
  (prefix: string = defaultPrefix): SubjectOf =>
  (event) =>
    `${prefix}.${token(event.category)}.${token(event.type)}`

/**
 * microcosm-pubsub's naming: `<prefix>.created.<category>.<type>` with the type in lower case (`created.task.assigned`
 * under the prefix).
 *
 * @since 0.1.0
 * @category constructors
 */
export const microcosm =
  (prefix: string = defaultPrefix): SubjectOf =>
  (event) =>
    `${prefix}.created.${token(event.category)}.${token(event.type.toLowerCase())}`

/**
 * What is wrong with a subject to publish to, or `undefined` when nothing is.
 *
 * @since 0.1.0
 * @category validation
 */
export const problem = (subject: string): string | undefined => {
  if (typeof subject !== "string" || subject.length === 0) return "it is empty"
  const tokens = subject.split(".")
  if (tokens.some((t) => t.length === 0)) return "it has an empty token (a leading, trailing or double '.')"
  if (tokens.some((t) => t === "*" || t === ">")) return "it has a wildcard token"
  if (/[\s\p{Cc}]/u.test(subject)) return "it contains whitespace or a control character"
  return undefined
}

/**
 * Whether subject `pattern` (which may hold `*` and a final `>`) covers every subject `subject` stands for (itself a
 * subject or a pattern).
 *
 * @since 0.1.0
 * @category utils
 */
export const covers = (pattern: string, subject: string): boolean => {
  const p = pattern.split(".")
  const s = subject.split(".")
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return i < s.length
    if (i >= s.length) return false
    if (s[i] === ">") return false
    if (p[i] !== "*" && p[i] !== s[i]) return false
  }
  return p.length === s.length
}

/**
 * The subject filters of the default naming for some categories and event types (both optional; both must match):
 * `<prefix>.<category>.<type>` for each pair, `*` for a missing side.
 *
 * @since 0.1.0
 * @category constructors
 */
export const filter = (
  options: {
    readonly prefix?: string | undefined
    readonly categories?: ReadonlyArray<string> | undefined
    readonly eventTypes?: ReadonlyArray<string> | undefined
  } = {}
): ReadonlyArray<string> => {
  const prefix = options.prefix ?? defaultPrefix
  const categories = options.categories?.map(token) ?? ["*"]
  const types = options.eventTypes?.map(token) ?? ["*"]
  return categories.flatMap((category) => types.map((type) => `${prefix}.${category}.${type}`))
}
