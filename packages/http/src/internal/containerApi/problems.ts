/**
 * The refusals and failures of the container resources as problems, and the decider's own refusals (no such
 * container, one that already exists, a failed `If-Match`).
 */
import type { Machine } from "@evently/machine"
import { type CommandHandler, EventCodec, EventStore } from "@evently/store"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Problem from "../../Problem.ts"

export const invalidRequest = (tag: string, errors: ReadonlyArray<Problem.Issue>) =>
  new Problem.InvalidRequest({
    tag,
    errors,
    detail: errors.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; ")
  })

/** What the decider refuses besides the machine's own errors. */
export class Missing extends Data.TaggedError("Missing")<{ readonly id: string }> {}
export class Exists extends Data.TaggedError("Exists")<{ readonly id: string; readonly version: number }> {}
export class Stale extends Data.TaggedError("Stale")<{ readonly expected: string; readonly actual: number }> {}

export type RunProblem =
  | Problem.IllegalTransition
  | Problem.InvalidRequest
  | Problem.NotFound
  | Problem.AlreadyExists
  | Problem.PreconditionFailed
  | Problem.Contended
  | Problem.IdempotencyKeyReused
  | Problem.Unavailable
  | Problem.UnreadableEvent

export const notFound = (id: string, what = `No container '${id}'`) =>
  new Problem.NotFound({ tag: "NotFound", id, detail: what })

export const unavailable = (error: { readonly _tag: string; readonly message: string }) =>
  new Problem.Unavailable({ tag: error._tag, detail: error.message })

/**
 * A failed read as a problem: a stored event that cannot be read (a damaged row, or one the codec does not decode)
 * names its position; anything else is the store being unavailable.
 */
export const readProblem = (error: {
  readonly _tag: string
  readonly message: string
}): Problem.UnreadableEvent | Problem.Unavailable =>
  error instanceof EventStore.UnreadableEvent || error instanceof EventCodec.EventDecodeError
    ? new Problem.UnreadableEvent({
        tag: error._tag,
        position: String(error.position),
        stream: error.stream,
        detail: error.message
      })
    : unavailable(error)

export const keyReused = (key: string) =>
  new Problem.IdempotencyKeyReused({
    tag: "IdempotencyKeyReused",
    key,
    detail: `Idempotency-Key '${key}' was already used for another request on this resource; nothing was written`
  })

const fail = <E>(problem: E): Effect.Effect<never, E> => Effect.fail(problem)

/**
 * The problem for each error a container's command can fail with, by tag (for `Effect.catchTags`): the decider's
 * refusals, the machine's, the handler's, and the store's. `idempotencyKey` names a key whose ids met other content.
 */
export const commandProblems = (idempotencyKey: string | undefined) => ({
  IllegalTransition: (error: Machine.IllegalTransition) =>
    fail(
      new Problem.IllegalTransition({
        tag: error._tag,
        eventType: error.eventType,
        state: error.state,
        revision: error.revision,
        allowed: error.allowed,
        detail: error.message
      })
    ),
  MissingRequiredField: (error: Machine.MissingRequiredField) =>
    fail(
      invalidRequest(
        error._tag,
        error.fields.map((field) => ({
          path: ["payload", field],
          message: `Event type '${error.eventType}' requires field '${field}'`
        }))
      )
    ),
  InvalidAutomaticEvent: (error: Machine.InvalidAutomaticEvent) =>
    fail(invalidRequest(error._tag, [{ path: ["payload"], message: error.message }])),
  Missing: (error: Missing) => fail(notFound(error.id)),
  Exists: (error: Exists) =>
    fail(
      new Problem.AlreadyExists({
        tag: "AlreadyExists",
        id: error.id,
        version: error.version,
        detail: `Container '${error.id}' already exists (version ${error.version})`
      })
    ),
  Stale: (error: Stale) =>
    fail(
      new Problem.PreconditionFailed({
        tag: "PreconditionFailed",
        expected: error.expected,
        actual: error.actual,
        detail: `If-Match ${error.expected} does not match the current version "${error.actual}"`
      })
    ),
  ConcurrencyRetriesExhausted: (error: CommandHandler.ConcurrencyRetriesExhausted) =>
    fail(new Problem.Contended({ tag: error._tag, attempts: error.attempts, detail: error.message })),
  // The event ids derived from the key are stored with other content: the key's first request differed.
  EventIdConflict: () => fail(keyReused(idempotencyKey ?? "")),
  InvalidEvent: (error: EventStore.InvalidEvent) =>
    fail(invalidRequest(error._tag, [{ path: ["payload"], message: error.reason }])),
  InvalidStreamName: (error: { readonly _tag: string; readonly message: string }) => fail(unavailable(error)),
  InvalidReadOptions: (error: EventStore.InvalidReadOptions) => fail(readProblem(error)),
  StoreError: (error: EventStore.StoreError) => fail(readProblem(error)),
  UnreadableEvent: (error: EventStore.UnreadableEvent) => fail(readProblem(error)),
  EventDecodeError: (error: EventCodec.EventDecodeError) => fail(readProblem(error))
})
