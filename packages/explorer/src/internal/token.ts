/**
 * The action token: actions exist only when the server is given one, and each action request must carry it in
 * `Authorization: Bearer <token>`. Compared in constant time (as SHA-256 digests, so lengths do not leak either).
 */
import { createHash, timingSafeEqual } from "node:crypto"
import type * as HttpServerRequest from "effect/http/HttpServerRequest"

const digest = (text: string): Buffer => createHash("sha256").update(text, "utf8").digest()

/** Whether `request` carries `token` as its bearer token. */
export const carries = (request: HttpServerRequest.HttpServerRequest, token: string): boolean => {
  const header = request.headers["authorization"]
  if (typeof header !== "string") return false
  const match = /^Bearer (.+)$/.exec(header.trim())
  return match !== null && timingSafeEqual(digest(match[1]!), digest(token))
}
