/**
 * The errors of the container resources as RFC 9457 problems (`application/problem+json`): each carries `type` (a
 * `urn:evently:problem:*` URI), `title`, `status`, `detail` and `tag` (the name of the typed error behind it), plus
 * what a client needs to react: the state and allowed event types of a refused transition, the expected and actual
 * versions of a failed precondition, each bad field of an invalid request.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import * as ProblemClass from "./internal/problemClass.ts"

/**
 * One bad part of a request: where (`["payload", "assignee"]`, `["params", "id"]`, …) and why.
 *
 * @since 0.1.0
 * @category models
 */
export const Issue = Schema.Struct({
  path: Schema.Array(Schema.Union([Schema.String, Schema.Number])),
  message: Schema.String
})

/**
 * @since 0.1.0
 * @category models
 */
export type Issue = typeof Issue.Type

/**
 * The request does not decode: malformed JSON, a field of the wrong type, an unknown event `_tag`, a bad id or query
 * parameter. `errors` names each bad field.
 *
 * @since 0.1.0
 * @category problems
 */
export class InvalidRequest extends ProblemClass.make<InvalidRequest>()(
  "InvalidRequest",
  { type: "urn:evently:problem:invalid-request", status: 400, title: "Invalid request" },
  { tag: Schema.String, errors: Schema.Array(Issue) }
) {}

/**
 * No container has this id (no event was ever recorded for it), or it has no event with this version.
 *
 * @since 0.1.0
 * @category problems
 */
export class NotFound extends ProblemClass.make<NotFound>()(
  "NotFound",
  { type: "urn:evently:problem:not-found", status: 404, title: "Not found" },
  { tag: Schema.String, id: Schema.String }
) {}

/**
 * The machine refuses the event in the container's current state; `state` is the control state and `allowed` the
 * event types it would accept; `revision` is the machine's revision (bumped by restarting events).
 *
 * @since 0.1.0
 * @category problems
 */
export class IllegalTransition extends ProblemClass.make<IllegalTransition>()(
  "IllegalTransition",
  { type: "urn:evently:problem:illegal-transition", status: 409, title: "Illegal transition" },
  {
    tag: Schema.String,
    eventType: Schema.String,
    state: Schema.Array(Schema.String),
    revision: Schema.Int,
    allowed: Schema.Array(Schema.String)
  }
) {}

/**
 * A container with this id already exists, so an initial event cannot create it.
 *
 * @since 0.1.0
 * @category problems
 */
export class AlreadyExists extends ProblemClass.make<AlreadyExists>()(
  "AlreadyExists",
  { type: "urn:evently:problem:already-exists", status: 409, title: "Already exists" },
  { tag: Schema.String, id: Schema.String, version: Schema.Int }
) {}

/**
 * The container kept changing under the command until the retry policy gave up; nothing was written. Sending the
 * request again is safe.
 *
 * @since 0.1.0
 * @category problems
 */
export class Contended extends ProblemClass.make<Contended>()(
  "Contended",
  { type: "urn:evently:problem:contended", status: 409, title: "Concurrent updates" },
  { tag: Schema.String, attempts: Schema.Int }
) {}

/**
 * `If-Match` names a version the container is not at; nothing was written. `actual` is its current version (the
 * `ETag` to send after re-reading it).
 *
 * @since 0.1.0
 * @category problems
 */
export class PreconditionFailed extends ProblemClass.make<PreconditionFailed>()(
  "PreconditionFailed",
  { type: "urn:evently:problem:precondition-failed", status: 412, title: "Precondition failed" },
  { tag: Schema.String, expected: Schema.String, actual: Schema.Int }
) {}

/**
 * The request body is larger than the server accepts.
 *
 * @since 0.1.0
 * @category problems
 */
export class PayloadTooLarge extends ProblemClass.make<PayloadTooLarge>()(
  "PayloadTooLarge",
  { type: "urn:evently:problem:payload-too-large", status: 413, title: "Payload too large" },
  { tag: Schema.String, limit: Schema.Int }
) {}

/**
 * The server requires `If-Match` on appends and the request has none.
 *
 * @since 0.1.0
 * @category problems
 */
export class PreconditionRequired extends ProblemClass.make<PreconditionRequired>()(
  "PreconditionRequired",
  { type: "urn:evently:problem:precondition-required", status: 428, title: "Precondition required" },
  { tag: Schema.String }
) {}

/**
 * The event store failed; the request may or may not have been applied when it was an append: retry it with the
 * same `Idempotency-Key`. (A stored event that cannot be read is an {@link UnreadableEvent}.)
 *
 * @since 0.1.0
 * @category problems
 */
export class Unavailable extends ProblemClass.make<Unavailable>()(
  "Unavailable",
  { type: "urn:evently:problem:unavailable", status: 503, title: "Service unavailable" },
  { tag: Schema.String }
) {}

/**
 * A stored event of the container cannot be read: its row was damaged outside evently (`tag` `UnreadableEvent`), or
 * it does not decode with the machine's event codec (`tag` `EventDecodeError`). `position` (a 64-bit integer, as a
 * string) and `stream` say which one; retrying does not help until the row is fixed.
 *
 * @since 0.2.0
 * @category problems
 */
export class UnreadableEvent extends ProblemClass.make<UnreadableEvent>()(
  "UnreadableEvent",
  { type: "urn:evently:problem:unreadable-event", status: 500, title: "Unreadable stored event" },
  { tag: Schema.String, position: Schema.String, stream: Schema.String }
) {}

/**
 * The `Idempotency-Key` was already used for another request on this resource (another event, or another endpoint);
 * nothing was written. A retry must send the same request with the same key; a new request needs a new key.
 *
 * @since 0.2.0
 * @category problems
 */
export class IdempotencyKeyReused extends ProblemClass.make<IdempotencyKeyReused>()(
  "IdempotencyKeyReused",
  { type: "urn:evently:problem:idempotency-key-reused", status: 422, title: "Idempotency key reused" },
  { tag: Schema.String, key: Schema.String }
) {}

/**
 * The request body's `Content-Type` is not one the endpoint reads; `supported` lists those it does.
 *
 * @since 0.2.0
 * @category problems
 */
export class UnsupportedMediaType extends ProblemClass.make<UnsupportedMediaType>()(
  "UnsupportedMediaType",
  { type: "urn:evently:problem:unsupported-media-type", status: 415, title: "Unsupported media type" },
  { tag: Schema.String, contentType: Schema.String, supported: Schema.Array(Schema.String) }
) {}

/**
 * No resource of the container type has this path.
 *
 * @since 0.2.0
 * @category problems
 */
export class NoRoute extends ProblemClass.make<NoRoute>()(
  "NoRoute",
  { type: "urn:evently:problem:no-route", status: 404, title: "No such resource" },
  { tag: Schema.String, method: Schema.String, path: Schema.String }
) {}

/**
 * The resource does not take this method; `allow` (and the `Allow` header) names the methods it takes. The log is
 * immutable: no resource takes PUT, PATCH or DELETE.
 *
 * @since 0.2.0
 * @category problems
 */
export class MethodNotAllowed extends ProblemClass.make<MethodNotAllowed>()(
  "MethodNotAllowed",
  { type: "urn:evently:problem:method-not-allowed", status: 405, title: "Method not allowed" },
  { tag: Schema.String, method: Schema.String, allow: Schema.Array(Schema.String) }
) {}

/**
 * The server failed in a way it did not expect (a defect); the details are in its log, not in the response.
 *
 * @since 0.2.0
 * @category problems
 */
export class InternalError extends ProblemClass.make<InternalError>()(
  "InternalError",
  { type: "urn:evently:problem:internal-error", status: 500, title: "Internal error" },
  { tag: Schema.String }
) {}
