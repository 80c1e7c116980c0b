/**
 * JSON answers of the explorer's API: bigints as decimal strings, dates as ISO strings, errors as
 * `{ "error": "..." }` with a status, and the query's parameters read with a typed error for bad ones.
 */
import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import type * as HttpServerRequest from "effect/http/HttpServerRequest"

/** A request the API refuses: `status` (400, 401, 404…) and what was wrong. */
export class Refused extends Data.TaggedError("Refused")<{ readonly status: number; readonly reason: string }> {}

const replacer = (_key: string, value: unknown): unknown => (typeof value === "bigint" ? String(value) : value)

/** The headers of every answer: no caching of live data, no sniffing, no referrer. */
export const baseHeaders = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer"
} as const

/** `value` as JSON (bigints as strings). */
export const json = (value: unknown, status = 200): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.text(JSON.stringify(value, replacer), {
    status,
    contentType: "application/json; charset=utf-8",
    headers: baseHeaders
  })

/** Answers a `Refused` with its status, and any other failure with 500 (logged); an interrupted request stays so. */
export const guard = <E, R>(
  effect: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, R> =>
  effect.pipe(
    Effect.catchCause((cause) => {
      if (Cause.hasInterruptsOnly(cause)) return Effect.interrupt
      const failure = cause.reasons.find((r) => r._tag === "Fail")
      if (failure !== undefined && failure.error instanceof Refused) {
        return Effect.succeed(json({ error: failure.error.reason }, failure.error.status))
      }
      return Effect.as(
        Effect.logError("Explorer: a request failed", cause),
        json({ error: "The explorer failed to answer (see the server's log)" }, 500)
      )
    })
  )

/** The request's query parameters. */
export const query = (request: HttpServerRequest.HttpServerRequest): URLSearchParams =>
  new URL(request.url, "http://localhost").searchParams

// Postgres text cannot hold a NUL character: a parameter with one would fail its query (a 500), not find nothing.
const nul = "\u0000"

/** An optional text parameter (absent or empty: `undefined`), without a NUL character. */
export const optionalText = (params: URLSearchParams, name: string): Effect.Effect<string | undefined, Refused> => {
  const value = params.get(name)
  if (value === null || value === "") return Effect.succeed(undefined)
  return value.includes(nul)
    ? Effect.fail(
        new Refused({ status: 400, reason: `The query parameter '${name}' must not contain a NUL character` })
      )
    : Effect.succeed(value)
}

/** A required, non-empty text parameter, without a NUL character. */
export const text = (params: URLSearchParams, name: string): Effect.Effect<string, Refused> =>
  Effect.flatMap(optionalText(params, name), (value) =>
    value === undefined
      ? Effect.fail(new Refused({ status: 400, reason: `The query parameter '${name}' is required` }))
      : Effect.succeed(value)
  )

const maxBigint = 9_223_372_036_854_775_807n

/** An optional parameter that is a log position or row id: a Postgres `bigint` from 0 to 2^63 - 1. */
export const bigint = (params: URLSearchParams, name: string): Effect.Effect<bigint | undefined, Refused> => {
  const value = params.get(name)
  if (value === null || value === "") return Effect.succeed(undefined)
  return /^\d{1,19}$/.test(value) && BigInt(value) <= maxBigint
    ? Effect.succeed(BigInt(value))
    : Effect.fail(
        new Refused({
          status: 400,
          reason: `The query parameter '${name}' must be an integer from 0 to ${maxBigint}, not '${value}'`
        })
      )
}

/** An optional integer parameter between `min` and `max`. */
export const integer = (
  params: URLSearchParams,
  name: string,
  range: { readonly min: number; readonly max: number }
): Effect.Effect<number | undefined, Refused> => {
  const value = params.get(name)
  if (value === null || value === "") return Effect.succeed(undefined)
  const n = Number(value)
  return /^-?\d+$/.test(value) && n >= range.min && n <= range.max
    ? Effect.succeed(n)
    : Effect.fail(
        new Refused({
          status: 400,
          reason: `The query parameter '${name}' must be an integer from ${range.min} to ${range.max}, not '${value}'`
        })
      )
}

/** One of `choices`, or the first when the parameter is absent. */
export const choice = <const A extends string>(
  params: URLSearchParams,
  name: string,
  choices: readonly [A, ...Array<A>]
): Effect.Effect<A, Refused> => {
  const value = params.get(name)
  if (value === null || value === "") return Effect.succeed(choices[0])
  return (choices as ReadonlyArray<string>).includes(value)
    ? Effect.succeed(value as A)
    : Effect.fail(
        new Refused({
          status: 400,
          reason: `The query parameter '${name}' must be one of ${choices.join(", ")}, not '${value}'`
        })
      )
}
