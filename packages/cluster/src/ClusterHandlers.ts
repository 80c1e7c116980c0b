/**
 * Command handlers built by others (`CommandApi` of `@evently/http`, through `CommandHandler.Maker`) run as cluster
 * entities: each becomes a {@link StreamEntity.StreamEntity} named after its `Wire` name, registered on this runner,
 * and the code that asked for it gets the entity's client. Every process serving the same API then sends a stream's
 * commands to the stream's owner, which handles them one at a time.
 *
 * ```ts
 * import { NodeHttpServer } from "@effect/platform-node"
 * import { ClusterHandlers, ClusterRunner } from "@evently/cluster"
 * import { CommandApi } from "@evently/http"
 * import * as Layer from "effect/Layer"
 * import * as HttpRouter from "effect/http/HttpRouter"
 * import { createServer } from "node:http"
 *
 * declare const accounts: CommandApi.CommandApi<"accounts">
 *
 * // An HTTP server that is also a runner; with `ClusterRunner.layerClientOnly()` it would only send commands.
 * export const server = HttpRouter.serve(accounts.routes).pipe(
 *   Layer.provide(ClusterHandlers.layer()),
 *   Layer.provide(ClusterRunner.layer({ host: "127.0.0.1", port: 34431 })),
 *   Layer.provide(NodeHttpServer.layer(createServer, { port: 3000 }))
 *   // then the EventStore and the SqlClient of the events' Postgres
 * )
 * ```
 *
 * @since 0.1.0
 */
import { CommandHandler, EventStore } from "@evently/store"
import * as Sharding from "effect/cluster/Sharding"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as StreamEntity from "./StreamEntity.ts"

/**
 * How the handlers run. `clientOnly` registers no entity here, only returns clients (a process joined with
 * `ClusterRunner.layerClientOnly` registers none anyway: its sharding has no runner address). `maxIdleTime`
 * passivates idle streams on the runner; `persisted` stores each command in the cluster's message table first (see
 * `StreamEntity.Protocol`).
 *
 * A command with no reply within `attemptTimeout` (default 5 seconds) is sent again with the same command id (a send
 * to a runner that was killed may otherwise wait without an answer), so it is applied at most once; after
 * `deliveryTimeout` (default 30 seconds) in all it fails with `StreamEntity.DeliveryFailed`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly clientOnly?: boolean | undefined
  readonly maxIdleTime?: Duration.Input | undefined
  readonly deliveryTimeout?: Duration.Input | undefined
  readonly attemptTimeout?: Duration.Input | undefined
  readonly persisted?: boolean | undefined
}

/** A handler as the Maker returns it, whatever its types. */
type AnyHandler = CommandHandler.CommandHandler<unknown, unknown, unknown, unknown>

/** The time an attempt has (at most the whole delivery's), and the whole delivery's, in milliseconds. */
const timeouts = (options: Options) => {
  const total = Duration.toMillis(Duration.fromInputUnsafe(options.deliveryTimeout ?? "30 seconds"))
  const attempt = Duration.toMillis(Duration.fromInputUnsafe(options.attemptTimeout ?? "5 seconds"))
  return { attempt: Math.min(attempt, total), total }
}

/**
 * A client that sends a command again, with the same command id, while an attempt ends in `DeliveryFailed`: each
 * attempt is bounded by `attemptTimeout`, all of them by `deliveryTimeout`.
 */
const resending = (client: AnyHandler, options: Options): AnyHandler => {
  const { attempt, total } = timeouts(options)
  const resend = <A, E>(send: Effect.Effect<A, E>) =>
    Effect.retry(send, {
      times: Math.max(0, Math.ceil(total / attempt) - 1),
      while: (error) => error instanceof StreamEntity.DeliveryFailed
    })
  return {
    handle: (stream, command, handleOptions) => {
      const commandId = handleOptions?.commandId ?? crypto.randomUUID()
      return resend(client.handle(stream, command, { ...handleOptions, commandId }))
    },
    load: (stream) => resend(client.load(stream))
  }
}

/**
 * The `CommandHandler.Maker` of a cluster: each handler asked for becomes a stream entity named after its wire name,
 * registered on this runner (for as long as the scope of the layer lasts), and what is returned is its client. The
 * same name asked for again returns the same client (the first handler's options are the ones registered).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<CommandHandler.MakeWith, never, Sharding.Sharding | Scope.Scope> =>
  Effect.gen(function* () {
    const sharding = yield* Sharding.Sharding
    const scope = yield* Scope.Scope
    const made = new Map<string, AnyHandler>()
    const makeWith = Effect.fnUntraced(function* (
      handlerOptions: Omit<CommandHandler.Options<unknown, { readonly _tag: string }, unknown, unknown>, "snapshot">,
      wire: CommandHandler.Wire<unknown, unknown>
    ) {
      const known = made.get(wire.name)
      if (known !== undefined) return known
      const entity = StreamEntity.make(wire.name, {
        commands: wire.commands,
        codec: handlerOptions.codec,
        state: wire.state,
        errors: wire.errors,
        persisted: options.persisted
      })
      if (options.clientOnly !== true) {
        const store = yield* EventStore.EventStore
        const { decider, cache, retry } = handlerOptions
        yield* Layer.buildWithScope(
          StreamEntity.layer(entity, { decider, cache, retry, maxIdleTime: options.maxIdleTime }),
          scope
        ).pipe(Effect.provideService(Sharding.Sharding, sharding), Effect.provideService(EventStore.EventStore, store))
      }
      const attempts = yield* StreamEntity.client(entity, { deliveryTimeout: timeouts(options).attempt }).pipe(
        Effect.provideService(Sharding.Sharding, sharding)
      )
      const client = resending(attempts as AnyHandler, options)
      made.set(wire.name, client)
      return client
    })
    return makeWith as unknown as CommandHandler.MakeWith
  })

/**
 * Provides the cluster's `CommandHandler.Maker`: the handlers built under it (a `CommandApi`'s routes) are stream
 * entities of the cluster this process joined (`ClusterRunner.layer` or `ClusterRunner.layerClientOnly`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<never, never, Sharding.Sharding> =>
  Layer.effect(CommandHandler.Maker, make(options))
