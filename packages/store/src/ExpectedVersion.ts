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
