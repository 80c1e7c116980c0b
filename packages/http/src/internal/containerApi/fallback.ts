/**
 * The routes that answer what no endpoint of a container does, as problems.
 */
import * as Effect from "effect/Effect"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServerRespondable from "effect/http/HttpServerRespondable"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Problem from "../../Problem.ts"

/** The methods the router dispatches on, and those each resource takes. */
const routedMethods = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const
type RoutedMethod = (typeof routedMethods)[number]

const resourcesOf = (name: string): ReadonlyArray<readonly [HttpRouter.PathInput, ReadonlyArray<RoutedMethod>]> => [
  [`/${name}`, ["GET", "POST"]],
  [`/${name}/graph`, ["GET"]],
  [`/${name}/:id`, ["GET"]],
  [`/${name}/:id/events`, ["GET", "POST"]],
  [`/${name}/:id/events/:n`, ["GET"]]
]

/**
 * The routes that answer what no endpoint does under `/{name}`, as problems: a method a resource does not take is 405
 * (with `Allow`), any other path 404. Without them the router answers with an empty body.
 */
export const layerFallback = (name: string) =>
  HttpRouter.addAll([
    ...resourcesOf(name).flatMap(([path, allowed]) =>
      routedMethods
        .filter((method) => !allowed.includes(method))
        .map((method) =>
          HttpRouter.route(
            method,
            path,
            Effect.map(
              HttpServerRespondable.toResponse(
                new Problem.MethodNotAllowed({
                  tag: "MethodNotAllowed",
                  method,
                  allow: allowed,
                  detail: `${method} is not allowed here (the log is immutable); allowed: ${allowed.join(", ")}`
                })
              ),
              HttpServerResponse.setHeader("allow", allowed.join(", "))
            )
          )
        )
    ),
    ...routedMethods.map((method) =>
      HttpRouter.route(method, `/${name}/:id/:rest/*`, (request) => {
        const full = request.url.split("?")[0]!
        const path = full.length > 200 ? `${full.slice(0, 200)}…` : full
        return HttpServerRespondable.toResponse(
          new Problem.NoRoute({ tag: "NoRoute", method, path, detail: `No resource has the path ${path}` })
        )
      })
    )
  ])
