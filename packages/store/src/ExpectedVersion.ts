/**
 * What a writer expects of a stream's version when it appends: the optimistic-concurrency check.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * `Any` (no check), `NoStream` (the stream has no events), `StreamExists` (it has at least one), or `Exact` (its
 * version is exactly `version`; `Exact(0)` means the same as `NoStream`).
 *
 * @since 0.1.0
 * @category models
 */
export const ExpectedVersion = Schema.Union([
  Schema.TaggedStruct("Any", {}),
  Schema.TaggedStruct("NoStream", {}),
  Schema.TaggedStruct("StreamExists", {}),
  Schema.TaggedStruct("Exact", { version: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)) })
])

/**
 * @since 0.1.0
 * @category models
 */
export type ExpectedVersion = typeof ExpectedVersion.Type

/**
 * Append whatever the stream's version is.
 *
 * @since 0.1.0
 * @category constructors
 */
export const Any: ExpectedVersion = { _tag: "Any" }

/**
 * Append only if the stream has no events yet.
 *
 * @since 0.1.0
 * @category constructors
 */
export const NoStream: ExpectedVersion = { _tag: "NoStream" }

/**
 * Append only if the stream already has at least one event.
 *
 * @since 0.1.0
 * @category constructors
 */
export const StreamExists: ExpectedVersion = { _tag: "StreamExists" }

/**
 * Append only if the stream's version is exactly `version` (the number of events in it).
 *
 * @since 0.1.0
 * @category constructors
 */
export const Exact = (version: number): ExpectedVersion => ({ _tag: "Exact", version })

const describe = (input: unknown): string => {
  if (input === null || typeof input !== "object") {
    return typeof input === "string" ? JSON.stringify(input.slice(0, 40)) : String(input)
  }
  return Array.isArray(input) ? "an array" : "an object"
}

const versionProblem = (version: unknown): string | undefined =>
  typeof version === "number" && Number.isSafeInteger(version) && version >= 0
    ? undefined
    : `Exact needs a version that is an integer from 0 to ${Number.MAX_SAFE_INTEGER}, not ${
        typeof version === "bigint" ? `${version}n` : describe(version)
      }`

/**
 * Why `input` is not an expected version, or `undefined` when it is one: a plain object whose `_tag` is `Any`,
 * `NoStream`, `StreamExists` or `Exact`, with a `version` (an integer ≥ 0) for `Exact` and no other key. `null` or a
 * misspelled key is refused, never read as `Any`.
 *
 * @since 0.2.0
 * @category validation
 */
export const problem = (input: unknown): string | undefined => {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    return `the expected version is ${describe(input)}, not Any, NoStream, StreamExists or Exact(n)`
  }
  const tag = (input as { readonly _tag?: unknown })._tag
  if (tag !== "Any" && tag !== "NoStream" && tag !== "StreamExists" && tag !== "Exact") {
    return `the expected version's _tag is ${describe(tag)}, not Any, NoStream, StreamExists or Exact`
  }
  const allowed = tag === "Exact" ? ["_tag", "version"] : ["_tag"]
  const extra = Reflect.ownKeys(input).find((key) => typeof key === "symbol" || !allowed.includes(key))
  if (extra !== undefined) return `the expected version ${tag} has a key ${String(extra)} it does not take`
  if (tag === "Exact") {
    const version = versionProblem((input as { readonly version?: unknown }).version)
    return version === undefined ? undefined : `the expected version: ${version}`
  }
  return undefined
}

/**
 * Whether a stream whose current version is `actual` (0 when it has no events) meets the expectation.
 *
 * @since 0.1.0
 * @category predicates
 */
export const matches = (expected: ExpectedVersion, actual: number): boolean => {
  switch (expected._tag) {
    case "Any":
      return true
    case "NoStream":
      return actual === 0
    case "StreamExists":
      return actual > 0
    case "Exact":
      return actual === expected.version
  }
}

/**
 * A short human rendering: `any`, `no stream`, `stream exists`, or the exact version.
 *
 * @since 0.1.0
 * @category utils
 */
export const format = (expected: ExpectedVersion): string => {
  switch (expected._tag) {
    case "Any":
      return "any"
    case "NoStream":
      return "no stream"
    case "StreamExists":
      return "stream exists"
    case "Exact":
      return `version ${expected.version}`
  }
}
