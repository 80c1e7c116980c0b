/**
 * The request guard of the container resources: a body over the limit is a 413 problem (by `Content-Length`, or while
 * it is read), a body that is not JSON a 415 problem, a request that does not decode a 400 problem naming each bad
 * field, and a defect a 500 problem (logged, not sent).
 */
import * as ByteSize from "effect/ByteSize"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import type * as SchemaAST from "effect/SchemaAST"
import * as SchemaIssue from "effect/SchemaIssue"
import type { unhandled } from "effect/Types"
import * as HttpIncomingMessage from "effect/http/HttpIncomingMessage"
import * as HttpServerError from "effect/http/HttpServerError"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpApiError from "effect/http-api/HttpApiError"
import type { RequestGuard } from "../../ContainerApi.ts"
import * as Problem from "../../Problem.ts"
import { invalidRequest } from "./problems.ts"

const toPathSegment = (segment: PropertyKey | { readonly key: PropertyKey }): string | number => {
  const key = typeof segment === "object" ? segment.key : segment
  return typeof key === "number" ? key : String(key)
}

const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1()

/** The `_tag`s of a union of tagged objects, or nothing when a member is not one. */
const tagsOf = (union: SchemaAST.Union): ReadonlyArray<string> | undefined => {
  const tags: Array<string> = []
  for (const member of union.types) {
    if (member._tag === "Union") {
      const inner = tagsOf(member)
      if (inner === undefined) return undefined
      tags.push(...inner)
      continue
    }
    if (member._tag !== "Objects") return undefined
    const tag = member.propertySignatures.find((property) => property.name === "_tag")?.type
    if (tag?._tag !== "Literal" || typeof tag.literal !== "string") return undefined
    tags.push(tag.literal)
  }
  return tags
}

/** A body whose `_tag` no member of the union has: named, with the tags there are, instead of the union's dump. */
const unknownTag = (
  issue: SchemaIssue.Issue
): { readonly tag: string; readonly tags: ReadonlyArray<string> } | undefined => {
  if (issue._tag !== "AnyOf") return undefined
  const tags = tagsOf(issue.ast)
  const input: unknown = issue.input
  if (tags === undefined || typeof input !== "object" || input === null || !("_tag" in input)) return undefined
  const tag = input._tag
  return typeof tag === "string" && !tags.includes(tag) ? { tag, tags } : undefined
}

const schemaProblem = (error: HttpApiError.HttpApiSchemaError) => {
  const slot = error.kind.toLowerCase()
  const unknown = unknownTag(error.cause.issue)
  if (unknown !== undefined) {
    const tag = unknown.tag.length > 100 ? `${unknown.tag.slice(0, 100)}…` : unknown.tag
    return invalidRequest("UnknownType", [
      { path: [slot, "_tag"], message: `unknown type '${tag}'; expected one of ${unknown.tags.join(", ")}` }
    ])
  }
  return invalidRequest(
    "SchemaError",
    formatIssues(error.cause.issue).issues.map((issue) => ({
      path: [slot, ...(issue.path ?? []).map(toPathSegment)],
      message: issue.message
    }))
  )
}

const tooLarge = (limit: number) =>
  new Problem.PayloadTooLarge({ tag: "PayloadTooLarge", limit, detail: `The request body exceeds ${limit} bytes` })

const isBodyTooLarge = (defect: unknown): boolean =>
  defect instanceof HttpServerError.HttpServerError &&
  defect.reason._tag === "RequestParseError" &&
  defect.reason.reason === "BodyTooLarge"

const unsupportedMediaType = (contentType: string) =>
  new Problem.UnsupportedMediaType({
    tag: "UnsupportedMediaType",
    contentType,
    supported: ["application/json"],
    detail: `The request body is ${contentType === "" ? "of no media type" : contentType}; send application/json`
  })

const internalError = (defect: unknown): Effect.Effect<never, Problem.InternalError> =>
  Effect.andThen(
    Effect.logError("Unexpected failure while handling a request", Cause.die(defect)),
    Effect.fail(
      new Problem.InternalError({ tag: "InternalError", detail: "The server failed unexpectedly; see its log" })
    )
  )

/** The middleware: what `ContainerApi.layerRequestGuard` provides (see there). */
export const guard =
  (maxBodyBytes: number): RequestGuard["Service"] =>
  (httpEffect) =>
    Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const length = Number(request.headers["content-length"] ?? "0")
      if (Number.isFinite(length) && length > maxBodyBytes) return yield* tooLarge(maxBodyBytes)
      return yield* httpEffect.pipe(
        Effect.provideService(HttpIncomingMessage.MaxBodySize, ByteSize.bytes(maxBodyBytes)),
        // The endpoints answer 415 (as text/plain) for a body they cannot read; nothing else of theirs is a 415.
        Effect.flatMap((response) =>
          response.status === 415
            ? Effect.fail(unsupportedMediaType(request.headers["content-type"] ?? ""))
            : Effect.succeed(response)
        ),
        Effect.catch(
          (error): Effect.Effect<never, unhandled | Problem.UnsupportedMediaType | Problem.InvalidRequest> => {
            if (
              !HttpApiError.HttpApiSchemaError.is(error) ||
              error.kind === "Body" ||
              error.kind === "ResponseHeaders"
            ) {
              return Effect.fail(error)
            }
            return Effect.fail(schemaProblem(error))
          }
        ),
        Effect.catchDefect((defect): Effect.Effect<never, Problem.PayloadTooLarge | Problem.InternalError> =>
          isBodyTooLarge(defect) ? Effect.fail(tooLarge(maxBodyBytes)) : internalError(defect)
        )
      )
    })
