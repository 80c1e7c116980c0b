/**
 * The connection to NATS and its JetStream context, as a scoped service: connected when the layer is built (a typed
 * {@link NatsUnreachable} when no server answers or JetStream is off), reconnecting on its own while it runs, drained
 * when the scope closes.
 *
 * @since 0.1.0
 */
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream"
import { connect, type NatsConnection } from "@nats-io/transport-node"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"

/**
 * No NATS server with JetStream answered at start: `servers` is where the client looked, `reason` what went wrong.
 *
 * @since 0.1.0
 * @category errors
 */
export class NatsUnreachable extends Schema.TaggedError<NatsUnreachable>("@evently/nats/NatsUnreachable")(
  "NatsUnreachable",
  { servers: Schema.String, reason: Schema.String }
) {
  override get message(): string {
    return `No NATS server with JetStream answers at ${this.servers} (${this.reason}): start one (nats-server -js) or point NATS_URL at one`
  }
}

/**
 * The client: the connection, its JetStream client (publish, consume) and manager (streams, consumers), and the
 * servers it was given.
 *
 * @since 0.1.0
 * @category services
 */
export class NatsClient extends Context.Service<
  NatsClient,
  {
    readonly connection: NatsConnection
    readonly jetstream: JetStreamClient
    readonly manager: JetStreamManager
    readonly servers: string
    /**
     * How many times the connection was lost so far. A publisher that sees it change knows that some of what it sent
     * since may be lost while what it sends next is not: the relay publishes its batch again from its start.
     */
    readonly disconnects: () => number
  }
>()("@evently/nats/NatsClient") {}

/**
 * How to connect: `servers` (default `nats://127.0.0.1:4222`), a connection `name` shown by the server, how long the
 * first connection may take (`timeout`, default 5 seconds), the wait between reconnection attempts
 * (`reconnectTimeWait`, default 500 ms, jittered; attempts never stop) and the JetStream request `apiTimeout`
 * (default 5 seconds: how long a publish waits for its ack).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly servers?: string | ReadonlyArray<string> | undefined
  readonly name?: string | undefined
  readonly timeout?: Duration.Input | undefined
  readonly reconnectTimeWait?: Duration.Input | undefined
  readonly apiTimeout?: Duration.Input | undefined
}

/**
 * The default server.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultServers = "nats://127.0.0.1:4222"

const millis = (input: Duration.Input | undefined, fallback: Duration.Input) =>
  Duration.toMillis(Duration.fromInputUnsafe(input ?? fallback))

const describe = (error: unknown) => (error instanceof Error ? error.message : String(error))

/**
 * Connects, checks that JetStream answers, and drains the connection when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (options: Options = {}) {
  const list = options.servers === undefined ? [defaultServers] : [options.servers].flat()
  const servers = list.join(",")
  const unreachable = (error: unknown) => new NatsUnreachable({ servers, reason: describe(error) })
  const connection = yield* Effect.acquireRelease(
    Effect.tryPromise({
      try: () =>
        connect({
          servers: [...list],
          ...(options.name === undefined ? {} : { name: options.name }),
          timeout: millis(options.timeout, "5 seconds"),
          maxReconnectAttempts: -1,
          reconnectTimeWait: millis(options.reconnectTimeWait, "500 millis")
        }),
      catch: unreachable
    }),
    // Drain (flush what was sent, end subscriptions), but never wait on a server that is gone: then just close.
    (nc) =>
      Effect.promise(() => nc.drain().catch(() => undefined)).pipe(
        Effect.timeoutOption("5 seconds"),
        Effect.andThen(Effect.promise(() => nc.close().catch(() => undefined)))
      )
  )
  const timeout = millis(options.apiTimeout, "5 seconds")
  const manager = yield* Effect.tryPromise({
    try: () => jetstreamManager(connection, { timeout }),
    catch: (error) => unreachable(`JetStream does not answer: ${describe(error)}`)
  })
  let disconnects = 0
  yield* Effect.forkScoped(
    Stream.runForEach(
      Stream.fromAsyncIterable(connection.status(), () => undefined),
      (status) =>
        Effect.sync(() => {
          if (status.type === "disconnect" || status.type === "staleConnection" || status.type === "forceReconnect") {
            disconnects++
          }
        })
    ).pipe(Effect.ignore)
  )
  return NatsClient.of({
    connection,
    jetstream: jetstream(connection, { timeout }),
    manager,
    servers,
    disconnects: () => disconnects
  })
})

/**
 * The client as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<NatsClient, NatsUnreachable> =>
  Layer.effect(NatsClient, make(options))

/**
 * The client with its servers from `NATS_URL` (a comma-separated list; default {@link defaultServers}).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options?: Omit<Options, "servers">
): Layer.Layer<NatsClient, NatsUnreachable | Config.ConfigError> =>
  Layer.effect(
    NatsClient,
    Effect.flatMap(Config.String("NATS_URL").pipe(Config.withDefault(defaultServers)), (url) =>
      make({ ...options, servers: url.split(",").map((s) => s.trim()) })
    )
  )
