/**
 * The request guard of the container resources: a body over the limit is a 413 problem (by `Content-Length`, or while
 * it is read), a body that is not JSON a 415 problem, a request that does not decode a 400 problem naming each bad
 * field, and a defect a 500 problem (logged, not sent).
 */
import * as ByteSize from "effect/ByteSize"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as SchemaIssue from "effect/SchemaIssue"
import * as HttpIncomingMessage from "effect/http/HttpIncomingMessage"
import * as HttpServerError from "effect/http/HttpServerError"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import type * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as HttpApiError from "effect/http-api/HttpApiError"
import * as Problem from "../../Problem.ts"
import { invalidRequest } from "./problems.ts"

const toPathSegment = (segment: PropertyKey | { readonly key: PropertyKey }): string | number => {
  const key = typeof segment === "object" ? segment.key : segment
  return typeof key === "number" ? key : String(key)
}

const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1()

const schemaProblem = (error: HttpApiError.HttpApiSchemaError) => {
  const slot = error.kind.toLowerCase()
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

/**
 * The layer of {@link RequestGuard}: a body over `maxBodyBytes` (by `Content-Length`, or while it is read) is a 413
 * problem, a body that is not `application/json` a 415 problem, a request that does not decode a 400 problem, and a
 * defect a 500 problem (the defect is logged, not sent).
 *
 * @since 0.1.0
 * @category layers
 */
/** The middleware: what `ContainerApi.layerRequestGuard` provides. */
export const guard =
  (maxBodyBytes: number) => (httpEffect: Effect.Effect<HttpServerResponse.HttpServerResponse, unknown>) =>
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
        Effect.catch((error) => {
          if (!HttpApiError.HttpApiSchemaError.is(error) || error.kind === "Body" || error.kind === "ResponseHeaders") {
            return Effect.fail(error)
          }
          return Effect.fail(schemaProblem(error))
        }),
        Effect.catchDefect((defect): Effect.Effect<never, Problem.PayloadTooLarge | Problem.InternalError> =>
          isBodyTooLarge(defect) ? Effect.fail(tooLarge(maxBodyBytes)) : internalError(defect)
        )
      )
    })
