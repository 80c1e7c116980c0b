/**
 * What an `Idempotency-Key` is stored with: a SHA-256 fingerprint of the request it was first used for (which endpoint,
 * which container, the event as its Schema encodes it, with object keys sorted), kept in the metadata headers of the
 * events that request appended. A later request under the same key is the same request only when its fingerprint is
 * the same.
 */
import * as Effect from "effect/Effect"

/** The metadata header that holds a request's fingerprint. */
export const header = "idempotency-request-sha256"

/** A request under an idempotency key: the endpoint, the container id, and the event as its codec encodes it. */
export interface Request {
  readonly endpoint: string
  readonly id: string
  readonly event: unknown
}

/** JSON with the keys of every object sorted, so that two encodings of one value are one text. */
const canonical = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(canonical)
  if (typeof value !== "object" || value === null) return value
  const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return Object.fromEntries(entries.map(([key, inner]) => [key, canonical(inner)]))
}

/** The request's fingerprint: `sha256:` and the hex SHA-256 of its canonical JSON. */
export const fingerprint = (request: Request): Effect.Effect<string> =>
  Effect.map(
    Effect.promise(() =>
      crypto.subtle.digest(
        "SHA-256",
        new TextEncoder().encode(JSON.stringify(canonical([request.endpoint, request.id, request.event])))
      )
    ),
    (digest) => `sha256:${Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("")}`
  )
