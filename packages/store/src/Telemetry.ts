/**
 * Export of traces, metrics and logs over OTLP/HTTP with `effect/observability`, in one layer: evently's spans
 * (`PgEventStore.append`, `CommandHandler.handle`, `Subscriptions.run`, …), its metrics (`evently_*`) and the
 * application's logs reach an OpenTelemetry Collector or any OTLP/HTTP endpoint. The endpoint and the service name
 * come from the options or, when not given, from the standard `OTEL_*` variables through `Config`; with no endpoint
 * at all the layer exports nothing, so it can stay in the program everywhere.
 *
 * It lives in `@evently/store`, which every evently program installs, and posts with the `fetch` HTTP client that
 * `effect` itself ships: it adds no dependency. Use {@link layerOtlpWithClient} to post with another `HttpClient`
 * (`NodeHttpClient` from `@effect/platform-node`, a proxy, a client with extra middleware).
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FetchHttpClient from "effect/http/FetchHttpClient"
import type * as Headers from "effect/http/Headers"
import type * as HttpClient from "effect/http/HttpClient"
import * as Layer from "effect/Layer"
import * as Otlp from "effect/observability/Otlp"
import * as OtlpExporter from "effect/observability/OtlpExporter"
import * as OtlpSerialization from "effect/observability/OtlpSerialization"
import * as Schema from "effect/Schema"
import * as Subscriptions from "./Subscriptions.ts"

/**
 * How the signals are encoded: `http/protobuf` (the OTLP default) or `http/json`. gRPC is not supported.
 *
 * @since 0.1.0
 * @category models
 */
export type Protocol = "http/protobuf" | "http/json"

/**
 * Options of {@link layerOtlp}. Each one left out is read from its environment variable:
 *
 * - `url`: the base URL of the OTLP/HTTP endpoint (signals go to `/v1/traces`, `/v1/metrics` and `/v1/logs` below
 *   it), else `OTEL_EXPORTER_OTLP_ENDPOINT`; with neither, nothing is exported.
 * - `serviceName`: else `OTEL_SERVICE_NAME`, else `service.name` in `OTEL_RESOURCE_ATTRIBUTES`, else
 *   `unknown_service` (the OpenTelemetry default).
 * - `serviceVersion`: else `OTEL_SERVICE_VERSION`.
 * - `protocol`: else `OTEL_EXPORTER_OTLP_PROTOCOL`, else `http/protobuf`.
 * - `headers` (an API key, say): else `OTEL_EXPORTER_OTLP_HEADERS` (`key=value,key2=value2`, values URL-encoded).
 *
 * `OTEL_SDK_DISABLED=true` turns the export off whatever the options say. `OTEL_RESOURCE_ATTRIBUTES` adds resource
 * attributes (`deployment.environment=prod,...`), below those in `attributes`. `exportInterval` (default 5 s for
 * traces, 10 s for metrics, 1 s for logs) and `shutdownTimeout` (default 3 s: how long the final export at shutdown
 * may take) apply to the three signals.
 *
 * @since 0.1.0
 * @category models
 */
export interface OtlpOptions {
  readonly url?: string | undefined
  readonly serviceName?: string | undefined
  readonly serviceVersion?: string | undefined
  readonly attributes?: Record<string, unknown> | undefined
  readonly protocol?: Protocol | undefined
  readonly headers?: Headers.Input | undefined
  readonly exportInterval?: Duration.Input | undefined
  readonly shutdownTimeout?: Duration.Input | undefined
}

/**
 * An option of {@link layerOtlp} that cannot work, with the reason.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidTelemetryOptions extends Schema.TaggedError<InvalidTelemetryOptions>(
  "@evently/store/Telemetry/InvalidTelemetryOptions"
)("InvalidTelemetryOptions", { reason: Schema.String }) {
  override get message(): string {
    return `Invalid telemetry options: ${this.reason}`
  }
}

const protocolConfig = Config.Literals(["http/protobuf", "http/json"], "OTEL_EXPORTER_OTLP_PROTOCOL")

const resourceServiceName = Config.Record(Schema.String, Schema.StringFromUriComponent, "OTEL_RESOURCE_ATTRIBUTES", {
  trim: true,
  keepEmptyValues: true
}).pipe(
  Config.map((attributes) => attributes["service.name"]),
  Config.withDefault(undefined)
)

const optional = <A>(config: Config.Config<A>) => Config.withDefault(config, undefined)

/** The endpoint and the settings the options leave to the environment; `undefined` when nothing is to be exported. */
const resolve = Effect.fnUntraced(function* (options: OtlpOptions) {
  const disabled = yield* Config.Boolean("OTEL_SDK_DISABLED").pipe(Config.withDefault(false))
  const url = options.url ?? (yield* optional(Config.String("OTEL_EXPORTER_OTLP_ENDPOINT")))
  if (disabled || url === undefined || url.trim() === "") return undefined
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
    return yield* new InvalidTelemetryOptions({
      reason: `the OTLP endpoint '${url}' is not an http(s) URL${options.url === undefined ? " (from OTEL_EXPORTER_OTLP_ENDPOINT)" : ""}`
    })
  }
  // Read even when not needed: a malformed OTEL_RESOURCE_ATTRIBUTES is a ConfigError here, not a defect later.
  const fromResource = yield* resourceServiceName
  const serviceName =
    options.serviceName ?? (yield* optional(Config.String("OTEL_SERVICE_NAME"))) ?? fromResource ?? "unknown_service"
  const serviceVersion = options.serviceVersion ?? (yield* optional(Config.String("OTEL_SERVICE_VERSION")))
  const protocol = options.protocol ?? (yield* protocolConfig.pipe(Config.withDefault("http/protobuf" as const)))
  const headers =
    options.headers ??
    (yield* optional(Config.Record(Schema.String, Schema.StringFromUriComponent, "OTEL_EXPORTER_OTLP_HEADERS")))
  return { url, serviceName, serviceVersion, protocol, headers }
})

/**
 * {@link layerOtlp} posting with the `HttpClient` the program provides.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerOtlpWithClient = (
  options: OtlpOptions = {}
): Layer.Layer<OtlpExporter.Flusher, Config.ConfigError | InvalidTelemetryOptions, HttpClient.HttpClient> =>
  Layer.unwrap(
    Effect.map(resolve(options), (resolved) => {
      if (resolved === undefined) return OtlpExporter.layerFlusher
      return Otlp.layer({
        baseUrl: resolved.url,
        resource: {
          serviceName: resolved.serviceName,
          serviceVersion: resolved.serviceVersion,
          ...(options.attributes === undefined ? {} : { attributes: options.attributes })
        },
        headers: resolved.headers,
        loggerExportInterval: options.exportInterval,
        metricsExportInterval: options.exportInterval,
        tracerExportInterval: options.exportInterval,
        shutdownTimeout: options.shutdownTimeout
      }).pipe(
        Layer.provide(resolved.protocol === "http/json" ? OtlpSerialization.layerJson : OtlpSerialization.layerProtobuf)
      )
    })
  )

/**
 * Exports traces, metrics and logs over OTLP/HTTP (see {@link OtlpOptions} for what is read from the environment),
 * posting with `fetch`. Provide it to the whole program, once:
 *
 * ```ts
 * import { NodeRuntime } from "@effect/platform-node"
 * import * as Telemetry from "@evently/store/Telemetry"
 * import * as Effect from "effect/Effect"
 *
 * declare const program: Effect.Effect<void>
 *
 * program.pipe(Effect.provide(Telemetry.layerOtlp({ serviceName: "billing" })), NodeRuntime.runMain)
 * ```
 *
 * Spans, metrics and logs are sent in the background every few seconds and once more when the layer's scope closes
 * (the program ends); `OtlpExporter.Flusher`, which the layer provides, sends what is buffered at once (before a
 * serverless instance is frozen, say). An export that fails is retried, then the signal is paused for a minute: the
 * program itself never fails for its telemetry. Logs still reach the console as well.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerOtlp = (
  options: OtlpOptions = {}
): Layer.Layer<OtlpExporter.Flusher, Config.ConfigError | InvalidTelemetryOptions> =>
  Layer.provide(layerOtlpWithClient(options), FetchHttpClient.layer)

/**
 * Reads the status of the named subscriptions, which on the Postgres store sets their lag gauges
 * (`evently_subscription_lag_events`, `evently_subscription_lag_seconds`) for each partition. A subscription whose
 * status cannot be read is logged and skipped. Give it to `Metrics.layer({ refresh })` (`@evently/http`) so each
 * Prometheus scrape sees the current lag, or see {@link layerLag} for the OTLP export.
 *
 * @since 0.1.0
 * @category metrics
 */
export const refreshLag = (names: Iterable<string>): Effect.Effect<void, never, Subscriptions.Subscriptions> =>
  Effect.gen(function* () {
    const subscriptions = yield* Subscriptions.Subscriptions
    yield* Effect.forEach(
      names,
      (name) =>
        Effect.catch(subscriptions.status(name), (error) =>
          Effect.logWarning(`Telemetry: the lag of subscription '${name}' is not known: ${error.message}`)
        ),
      { discard: true }
    )
  })

/**
 * Keeps the lag gauges of the named subscriptions current (see {@link refreshLag}): once when the layer is built,
 * then every `interval` (default 15 seconds) while it lives. The lag is otherwise measured only when someone asks
 * for a subscription's status, so an exporter would send whatever it was then.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerLag = (
  names: Iterable<string>,
  options: { readonly interval?: Duration.Input | undefined } = {}
): Layer.Layer<never, never, Subscriptions.Subscriptions> => {
  const list = [...names]
  const refresh = refreshLag(list)
  return Layer.effectDiscard(
    Effect.andThen(
      refresh,
      Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(options.interval ?? Duration.seconds(15)), refresh)))
    )
  )
}
