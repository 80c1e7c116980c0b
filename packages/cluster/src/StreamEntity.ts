/**
 * A kind of stream as an `effect/cluster` entity: the entity id is the stream name, so each stream has one owner at a
 * time across the cluster, and the runner that owns its shard handles its commands one at a time with the state in
 * memory. {@link make} declares the protocol (commands, events, state, domain errors: the wire schemas, importable
 * by client-only processes), {@link layer} runs it on a runner, and {@link client} sends commands from any process
 * and answers exactly what a local `CommandHandler` answers.
 *
 * @since 0.1.0
 */
import { CommandHandler, EventCodec, EventStore, StreamName } from "@evently/store"
import type { Decider } from "@evently/machine"
import * as ClusterSchema from "effect/cluster/ClusterSchema"
import * as Entity from "effect/cluster/Entity"
import type * as Sharding from "effect/cluster/Sharding"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Snapshots from "@evently/store/Snapshots"
import * as Delivery from "./internal/delivery.ts"
import * as Wire from "./internal/wire.ts"

/**
 * What a stream entity is declared from: its `commands` (a Schema union of tagged commands), the `codec` of its
 * events, the `state` Schema (the reply carries the state after each command) and the decider's domain `errors` (their
 * Schema classes, so a client gets the very error the decider returned). `persisted` stores each command in the
 * cluster's message table before it is handled, so a command survives the death of the runner it was sent to and is
 * handled by the stream's next owner, at the cost of a write and polling; by default commands travel only over the
 * network and a client resends them (with the same command id) when a runner dies.
 *
 * @since 0.1.0
 * @category models
 */
export interface Protocol<
  Command,
  Event extends { readonly _tag: string },
  State,
  Errors extends ReadonlyArray<Schema.Top>
> {
  readonly commands: Schema.Codec<Command, unknown>
  readonly codec: EventCodec.EventCodec<Event>
  readonly state: Schema.Codec<State, unknown>
  readonly errors?: Errors | undefined
  readonly persisted?: boolean | undefined
}

/**
 * The effect/cluster entity behind a stream entity. Its Rpcs are built at run time from the protocol's Schemas, so
 * their types are not spelled out here: use the typed {@link client}, not the entity's own client.
 *
 * @since 0.1.0
 * @category models
 */
// oxlint-disable-next-line typescript/no-explicit-any
export type AnyEntity = Entity.Entity<any, any>

/**
 * A declared stream entity: its cluster `type`, the effect/cluster `entity` behind it, and its protocol.
 *
 * @since 0.1.0
 * @category models
 */
export interface StreamEntity<Type extends string, Command, Event extends { readonly _tag: string }, State, Error> {
  readonly type: Type
  readonly entity: AnyEntity
  readonly protocol: Protocol<Command, Event, State, ReadonlyArray<Schema.Top>>
  /** Phantom: the decider's domain errors. */
  readonly "~error"?: Error | undefined
}

/**
 * Declares a stream entity. The type names the entity in the cluster (and in its message tables): keep it stable.
 *
 * ```ts
 * import { StreamEntity } from "@evently/cluster"
 * import { EventCodec } from "@evently/store"
 * import * as Schema from "effect/Schema"
 *
 * const CounterEvent = Schema.TaggedUnion({ Added: { amount: Schema.Int } })
 * const CounterCommand = Schema.TaggedUnion({ Add: { amount: Schema.Int } })
 * class TooMuch extends Schema.TaggedError<TooMuch>()("TooMuch", { total: Schema.Int }) {}
 *
 * export const Counter = StreamEntity.make("Counter", {
 *   commands: CounterCommand,
 *   codec: EventCodec.make(CounterEvent),
 *   state: Schema.Struct({ total: Schema.Int }),
 *   errors: [TooMuch]
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <
  const Type extends string,
  Command,
  Event extends { readonly _tag: string },
  State,
  const Errors extends ReadonlyArray<Schema.Top> = readonly []
>(
  type: Type,
  protocol: Protocol<Command, Event, State, Errors>
): StreamEntity<Type, Command, Event, State, Errors[number]["Type"]> => {
  const handle = Wire.handleRpc(protocol)
  const rpcs = [
    protocol.persisted === true ? handle.annotate(ClusterSchema.Persisted, true) : handle,
    Wire.loadRpc(protocol)
  ]
  return { type, entity: Entity.make(type, rpcs), protocol }
}

/**
 * How the runners handle a stream entity's commands: the `decider`, optional snapshots, state cache and retry as for
 * `CommandHandler.make` (the codec is the entity's), and `maxIdleTime` (default: the runner's `entityMaxIdleTime`, 1
 * minute), after which an idle stream is passivated: its entity is stopped and its mailbox freed. Its state stays in
 * the runner's handler cache, which is bounded (`cache.capacity`, default 1,000 streams, least recently used out), so
 * the next command reads only the events appended since, or loads from the newest snapshot when configured.
 */
export interface Handling<Command, Event extends { readonly _tag: string }, State, Error, Encoded> {
  readonly decider: Decider.Decider<Command, Event, State, Error>
  readonly snapshot?: CommandHandler.SnapshotOptions<State, Encoded> | undefined
  readonly cache?: { readonly capacity?: number | undefined } | false | undefined
  readonly retry?: CommandHandler.Options<Command, Event, State, Error, Encoded>["retry"]
  readonly maxIdleTime?: Duration.Input | undefined
}

/**
 * Registers a stream entity on this runner: the commands of the streams whose shards it owns are handled here, one
 * at a time per stream, through one `CommandHandler` built on the `EventStore` in context; commands that arrive while
 * one is being handled are handled next as one group (one load, one append, each with its own outcome). The append still checks
 * the exact version it loaded, so while a shard moves between runners two owners can never both write.
 *
 * @since 0.1.0
 * @category layers
 */
export function layer<Type extends string, Command, Event extends { readonly _tag: string }, State, Error, Encoded>(
  streamEntity: StreamEntity<Type, Command, Event, State, Error>,
  handling: Handling<Command, Event, State, Error, Encoded> & {
    readonly snapshot: CommandHandler.SnapshotOptions<State, Encoded>
  }
): Layer.Layer<never, never, Sharding.Sharding | EventStore.EventStore | Snapshots.Snapshots>
export function layer<Type extends string, Command, Event extends { readonly _tag: string }, State, Error>(
  streamEntity: StreamEntity<Type, Command, Event, State, Error>,
  handling: Handling<Command, Event, State, Error, unknown>
): Layer.Layer<never, never, Sharding.Sharding | EventStore.EventStore>
export function layer<Type extends string, Command, Event extends { readonly _tag: string }, State, Error, Encoded>(
  streamEntity: StreamEntity<Type, Command, Event, State, Error>,
  handling: Handling<Command, Event, State, Error, Encoded>
): Layer.Layer<never, never, Sharding.Sharding | EventStore.EventStore | Snapshots.Snapshots> {
  const { maxIdleTime, ...options } = handling
  return Layer.unwrap(
    Effect.map(
      CommandHandler.make({
        ...options,
        codec: streamEntity.protocol.codec,
        // The entity takes every message at once; the handler's turns run a stream's commands one at a time and
        // handle those that queued meanwhile as one group (one load, one append).
        oneAtATimePerStream: true
      } as CommandHandler.Options<Command, Event, State, Error, Encoded>),
      (handler) =>
        Wire.entityLayer(
          streamEntity.entity,
          handler as unknown as CommandHandler.CommandHandler<unknown, unknown, unknown, unknown>,
          maxIdleTime
        )
    )
  ) as Layer.Layer<never, never, Sharding.Sharding | EventStore.EventStore | Snapshots.Snapshots>
}

/**
 * A stream entity's message could not be delivered or its reply was lost (the runner died, no runner owned its
 * shard, the cluster's storage failed) and resending it ran out of time. For a command (`operation: "handle"`), it may
 * or may not have been applied: send it again with the same `commandId`, which appends it at most once.
 *
 * @since 0.1.0
 * @category errors
 */
export class DeliveryFailed extends Schema.TaggedError<DeliveryFailed>("@evently/cluster/DeliveryFailed")(
  "DeliveryFailed",
  {
    stream: Schema.String,
    operation: Schema.Literals(["handle", "load"]),
    commandId: Schema.optional(Schema.String),
    attempts: Schema.Int,
    reason: Schema.String
  }
) {
  override get message(): string {
    return this.commandId === undefined
      ? `Loading stream '${this.stream}' got no reply after ${this.attempts} attempts (${this.reason})`
      : `Command ${this.commandId} for stream '${this.stream}' got no reply after ${this.attempts} attempts ` +
          `(${this.reason}); it may have been applied: send it again with the same commandId`
  }
}

/**
 * How a client resends: for how long in all (default 30 seconds) a command whose runner died or whose shard had no
 * owner is sent again, with the same command id.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClientOptions {
  readonly deliveryTimeout?: Duration.Input | undefined
}

/**
 * A client of a stream entity, usable from any process of the cluster (client-only ones included): a
 * `CommandHandler` whose commands are handled by the stream's owner. `handle` always sends a command id (a random one
 * when none is given), so a resend after a runner died appends once; `load` asks the owner, so it sees every command
 * handled before it. Both fail with the same typed errors as a local handler, plus {@link DeliveryFailed}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const client = <Type extends string, Command, Event extends { readonly _tag: string }, State, Error>(
  streamEntity: StreamEntity<Type, Command, Event, State, Error>,
  options?: ClientOptions
): Effect.Effect<
  CommandHandler.CommandHandler<Command, Event, State, Error | DeliveryFailed>,
  never,
  Sharding.Sharding
> =>
  Effect.map(streamEntity.entity.client, (clientFor) => {
    const send = Delivery.make(
      options?.deliveryTimeout,
      (stream, commandId, attempts, reason) =>
        new DeliveryFailed({
          stream,
          operation: commandId === undefined ? "load" : "handle",
          commandId,
          attempts,
          reason
        })
    )
    const handle = Effect.fn("StreamEntity.handle")(function* (
      stream: string,
      command: Command,
      handleOptions?: CommandHandler.HandleOptions
    ) {
      const name = yield* StreamName.parse(stream)
      const commandId = handleOptions?.commandId ?? crypto.randomUUID()
      const payload = { commandId, command, headers: handleOptions?.headers }
      const handled = yield* send(name, commandId, Wire.call(clientFor(name), "Handle", payload))
      return handled as CommandHandler.Handled<Event, State>
    })
    const load = Effect.fn("StreamEntity.load")(function* (stream: string) {
      const name = yield* StreamName.parse(stream)
      const loaded = yield* send(name, undefined, Wire.call(clientFor(name), "Load", undefined))
      return loaded as CommandHandler.Loaded<State>
    })
    return { handle, load } as CommandHandler.CommandHandler<Command, Event, State, Error | DeliveryFailed>
  })
