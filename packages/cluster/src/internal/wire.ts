/**
 * A stream entity's messages: `Handle` (a command with its id and headers; the reply is the command's `Handled` or
 * its typed error) and `Load` (the owner's current state), their Schemas, and the entity's handlers.
 *
 * A stream entity's protocol is built at run time from the user's Schemas, and the client is typed by the entity's
 * `Command`/`Event`/`State`/`Error`, not by effect/cluster's Rpc types (which would have to be spelled out for every
 * protocol): this module is where the two meet, and where the untyped calls are.
 */
import { CommandHandler, EventCodec, EventStore, StreamName } from "@evently/store"
import * as Entity from "effect/cluster/Entity"
import type * as Sharding from "effect/cluster/Sharding"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Rpc from "effect/rpc/Rpc"
import * as Schema from "effect/Schema"

/**
 * An entity of any protocol. Its Rpcs are built from the user's Schemas at run time; effect/cluster's `Entity.Any`
 * (Rpcs without middleware) does not accept them, as their middleware type is not inferred as `never`.
 */
// oxlint-disable-next-line typescript/no-explicit-any
export type AnyEntity = Entity.Entity<any, any>

/** What the wire needs of a protocol. */
interface Schemas {
  readonly commands: Schema.Top
  readonly codec: { readonly schema: Schema.Top }
  readonly state: Schema.Top
  readonly errors?: ReadonlyArray<Schema.Top> | undefined
}

/** The errors a command handler adds to the domain's: each is a Schema class, so it crosses the wire as itself. */
const loadErrors = [
  StreamName.InvalidStreamName,
  EventStore.InvalidReadOptions,
  EventStore.StoreError,
  EventStore.UnreadableEvent,
  EventCodec.EventDecodeError
] as const

const handleErrors = [
  ...loadErrors,
  CommandHandler.ConcurrencyRetriesExhausted,
  EventStore.EventIdConflict,
  EventStore.InvalidEvent
] as const

/** The `Handle` message: a command with its id (the message's primary key, so a persisted resend is deduplicated). */
export const handleRpc = (schemas: Schemas) =>
  Rpc.make("Handle", {
    payload: {
      commandId: Schema.String,
      command: schemas.commands,
      headers: Schema.optional(Schema.Record(Schema.String, Schema.String))
    },
    primaryKey: (payload) => payload.commandId,
    success: Schema.Struct({
      stream: Schema.String,
      version: Schema.Int,
      events: Schema.Array(schemas.codec.schema),
      positions: Schema.Array(Schema.BigInt),
      state: schemas.state,
      attempts: Schema.Int,
      duplicate: Schema.Boolean
    }),
    error: Schema.Union([...(schemas.errors ?? []), ...handleErrors])
  })

/** The `Load` message: the stream's state as its owner holds it. */
export const loadRpc = (schemas: Schemas) =>
  Rpc.make("Load", {
    success: Schema.Struct({
      stream: Schema.String,
      version: Schema.Int,
      state: schemas.state,
      snapshotVersion: Schema.Int,
      startVersion: Schema.Int,
      eventsRead: Schema.Int
    }),
    error: Schema.Union(loadErrors)
  })

/** The payload of a `Handle` message. */
interface HandlePayload {
  readonly commandId: string
  readonly command: unknown
  readonly headers?: Readonly<Record<string, string>> | undefined
}

/** A stream entity's handlers: each instance is one stream (its entity id), handled by the runner's one handler. */
export const entityLayer = (
  entity: AnyEntity,
  handler: CommandHandler.CommandHandler<unknown, unknown, unknown, unknown>,
  maxIdleTime: Duration.Input | undefined
): Layer.Layer<never, never, Sharding.Sharding> =>
  entity.toLayer(
    Effect.map(Entity.CurrentAddress, (address) => {
      const stream = address.entityId
      return {
        Handle: (request: { readonly payload: HandlePayload }) =>
          handler.handle(stream, request.payload.command, {
            commandId: request.payload.commandId,
            headers: request.payload.headers
          }),
        Load: () => handler.load(stream)
      }
    }) as never,
    // Messages are taken at once: the handler's per-stream turns order them (and group those that wait).
    { maxIdleTime, concurrency: "unbounded" }
  ) as Layer.Layer<never, never, Sharding.Sharding>

/** The client of one stream entity instance, as effect/cluster makes it. */
type EntityClient = Effect.Success<AnyEntity["client"]> extends (id: string) => infer C ? C : never

/** Sends one message through an entity client; the caller gives the reply its type. */
export const call = (client: EntityClient, tag: "Handle" | "Load", payload: unknown): Effect.Effect<unknown, unknown> =>
  (client as unknown as Record<string, (payload: unknown) => Effect.Effect<unknown, unknown>>)[tag]!(payload)
