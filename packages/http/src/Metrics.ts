/**
 * A Prometheus `/metrics` endpoint for an `@evently/http` server: every metric of the program (evently's
 * `evently_*` series, Effect's own, the application's) in the Prometheus text exposition format (version 0.0.4),
 * rendered by `PrometheusMetrics` from `effect/observability`. Add its layer beside the API's routes:
 *
 * ```ts
 * import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
 * import * as Metrics from "@evently/http/Metrics"
 * import * as Layer from "effect/Layer"
 * import * as HttpRouter from "effect/http/HttpRouter"
 * import { createServer } from "node:http"
 *
 * declare const apiRoutes: Layer.Layer<never, never, HttpRouter.HttpRouter>
 *
 * HttpRouter.serve(Layer.mergeAll(apiRoutes, Metrics.layer())).pipe(
 *   Layer.provide(NodeHttpServer.layer(createServer, { port: 3000 })),
 *   Layer.launch,
 *   NodeRuntime.runMain
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Layer from "effect/Layer"
import * as PrometheusMetrics from "effect/observability/PrometheusMetrics"

/**
 * Options of {@link layer}: `path` (default `/metrics`) and `refresh`, an effect run before each scrape to bring
 * gauges up to date, such as `Telemetry.refreshLag(names)` from `@evently/store` for the lag of subscriptions. A
 * failure of `refresh` is logged, and the scrape answers with the values the series had.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<E = never, R = never> {
  readonly path?: HttpRouter.PathInput | undefined
  readonly refresh?: Effect.Effect<void, E, R> | undefined
}

/**
 * The content type of the Prometheus text exposition format.
 *
 * @since 0.1.0
 * @category constants
 */
export const contentType = "text/plain; version=0.0.4; charset=utf-8"

/**
 * Adds `GET /metrics` (or `options.path`) to the server's router. The services `refresh` needs are taken from where
 * the layer is built.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <E = never, R = never>(
  options: Options<E, R> = {}
): Layer.Layer<never, never, HttpRouter.HttpRouter | R> =>
  Layer.effectDiscard(
    Effect.gen(function* () {
      const router = yield* HttpRouter.HttpRouter
      const context = yield* Effect.context<R>()
      const refresh =
        options.refresh === undefined
          ? Effect.void
          : options.refresh.pipe(
              Effect.catchCause((cause) => Effect.logWarning("Metrics: refreshing before a scrape failed", cause)),
              Effect.provideContext(context)
            )
      const scrape = Effect.andThen(refresh, PrometheusMetrics.format()).pipe(
        Effect.map((body) => HttpServerResponse.text(body, { contentType }))
      )
      yield* router.add("GET", options.path ?? "/metrics", scrape)
    })
  )
