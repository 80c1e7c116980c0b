/**
 * The JetStream stream the relay publishes into: its settings, created when asked, otherwise checked, with a typed
 * error that says what is missing.
 *
 * @since 0.1.0
 */
import { JetStreamApiCodes, JetStreamApiError, type StreamInfo } from "@nats-io/jetstream"
import { millis, nanos } from "@nats-io/transport-node"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as NatsClient from "./NatsClient.ts"
import * as Subjects from "./Subjects.ts"

/**
 * A JetStream stream: its `name`, the `subjects` it takes (default `<prefix>.>` of the relay), its `retention`
 * (default `limits`), the `duplicateWindow` within which a repeated `Nats-Msg-Id` is dropped (default 2 minutes:
 * the longest a relay may be down and still republish without a duplicate), `maxAge` (default: forever) and
 * `storage` (default `file`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Settings {
  readonly name: string
  readonly subjects?: ReadonlyArray<string> | undefined
  readonly retention?: "limits" | "interest" | "workqueue" | undefined
  readonly duplicateWindow?: Duration.Input | undefined
  readonly maxAge?: Duration.Input | undefined
  readonly storage?: "file" | "memory" | undefined
}

/**
 * The stream does not exist and was not to be created.
 *
 * @since 0.1.0
 * @category errors
 */
export class MissingStream extends Schema.TaggedError<MissingStream>("@evently/nats/MissingStream")("MissingStream", {
  stream: Schema.String,
  subjects: Schema.Array(Schema.String),
  servers: Schema.String
}) {
  override get message(): string {
    return `JetStream stream '${this.stream}' does not exist on ${this.servers}: create it with the subjects ${this.subjects.join(", ")} (the relay's create: true, or nats stream add ${this.stream} --subjects '${this.subjects.join(",")}')`
  }
}

/**
 * The stream exists but cannot serve the relay as it is: `missing` says what it lacks (subjects it does not take, a
 * duplicate window shorter than asked).
 *
 * @since 0.1.0
 * @category errors
 */
export class StreamMismatch extends Schema.TaggedError<StreamMismatch>("@evently/nats/StreamMismatch")(
  "StreamMismatch",
  { stream: Schema.String, missing: Schema.Array(Schema.String) }
) {
  override get message(): string {
    return `JetStream stream '${this.stream}' cannot take the relay's messages: ${this.missing.join("; ")}`
  }
}

/**
 * A JetStream request failed (the server went away, timed out, refused it).
 *
 * @since 0.1.0
 * @category errors
 */
export class JetStreamFailure extends Schema.TaggedError<JetStreamFailure>("@evently/nats/JetStreamFailure")(
  "JetStreamFailure",
  { operation: Schema.String, cause: Schema.Defect() }
) {
  override get message(): string {
    const cause: unknown = this.cause
    return `JetStream ${this.operation} failed: ${cause instanceof Error ? cause.message : String(cause)}`
  }
}

const windowMillis = (settings: Settings) =>
  Duration.toMillis(Duration.fromInputUnsafe(settings.duplicateWindow ?? "2 minutes"))

/**
 * The subjects of the stream: those of the settings, or `<prefix>.>`.
 *
 * @since 0.1.0
 * @category utils
 */
export const subjectsOf = (settings: Settings, prefix: string = Subjects.defaultPrefix): ReadonlyArray<string> =>
  settings.subjects ?? [`${prefix}.>`]

/**
 * What an existing stream lacks for these settings: the subjects it does not cover, a shorter duplicate window.
 *
 * @since 0.1.0
 * @category utils
 */
export const missing = (info: StreamInfo, settings: Settings, prefix?: string): ReadonlyArray<string> => {
  const taken = info.config.subjects ?? []
  const uncovered = subjectsOf(settings, prefix).filter((s) => !taken.some((t) => Subjects.covers(t, s)))
  const problems = uncovered.map((s) => `it does not take subject ${s} (its subjects: ${taken.join(", ") || "none"})`)
  const window = millis(info.config.duplicate_window ?? 0)
  if (window < windowMillis(settings)) {
    problems.push(`its duplicate window is ${window} ms, shorter than the ${windowMillis(settings)} ms asked`)
  }
  return problems
}

const isNotFound = (error: unknown) =>
  error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound

/**
 * The stream's info when it exists, `undefined` when it does not.
 *
 * @since 0.1.0
 * @category getters
 */
export const info = Effect.fnUntraced(function* (name: string) {
  const { manager } = yield* NatsClient.NatsClient
  return yield* Effect.tryPromise({
    try: () =>
      manager.streams.info(name).catch((error: unknown) => (isNotFound(error) ? undefined : Promise.reject(error))),
    catch: (cause) => new JetStreamFailure({ operation: `stream info of '${name}'`, cause })
  })
})

/**
 * Makes sure the stream can take the relay's messages: creates it when it is missing and `create` is set, then checks
 * it; fails with {@link MissingStream} or {@link StreamMismatch} otherwise.
 *
 * @since 0.1.0
 * @category constructors
 */
export const ensure = Effect.fn("JetStreamStream.ensure")(function* (
  settings: Settings,
  options: { readonly create?: boolean | undefined; readonly prefix?: string | undefined } = {}
) {
  const client = yield* NatsClient.NatsClient
  const subjects = subjectsOf(settings, options.prefix)
  let found = yield* info(settings.name)
  if (found === undefined && options.create !== true) {
    return yield* new MissingStream({ stream: settings.name, subjects: [...subjects], servers: client.servers })
  }
  if (found === undefined) {
    found = yield* Effect.tryPromise({
      try: () =>
        client.manager.streams.add({
          name: settings.name,
          subjects: [...subjects],
          retention: settings.retention ?? "limits",
          storage: settings.storage ?? "file",
          duplicate_window: nanos(windowMillis(settings)),
          max_age:
            settings.maxAge === undefined ? 0 : nanos(Duration.toMillis(Duration.fromInputUnsafe(settings.maxAge)))
        }),
      catch: (cause) => new JetStreamFailure({ operation: `creating stream '${settings.name}'`, cause })
    })
  }
  const lacks = missing(found, settings, options.prefix)
  if (lacks.length > 0) return yield* new StreamMismatch({ stream: settings.name, missing: [...lacks] })
  return found
})
