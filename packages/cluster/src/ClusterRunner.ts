/**
 * The cluster a process joins: `effect/cluster`'s sharding over sockets, with its runners, shard locks and messages
 * in tables of the same Postgres as the events (through the `SqlClient` in context). Adding a runner is starting one
 * more process with {@link layer}; a process that only sends commands (an HTTP front end, a script) uses
 * {@link layerClientOnly}. effect/cluster is marked unstable upstream: this module is the one place evently wires it.
 *
 * @since 0.1.0
 */
import { layerClientProtocol, layerSocketServer } from "@effect/platform-node/NodeClusterSocket"
import * as NodeCrypto from "@effect/platform-node/NodeCrypto"
import * as MessageStorage from "effect/cluster/MessageStorage"
import * as RunnerAddress from "effect/cluster/RunnerAddress"
import * as RunnerHealth from "effect/cluster/RunnerHealth"
import * as Runners from "effect/cluster/Runners"
import type * as Sharding from "effect/cluster/Sharding"
import * as ShardingConfig from "effect/cluster/ShardingConfig"
import * as SocketRunner from "effect/cluster/SocketRunner"
import * as SqlMessageStorage from "effect/cluster/SqlMessageStorage"
import * as SqlRunnerStorage from "effect/cluster/SqlRunnerStorage"
import * as TestRunner from "effect/cluster/TestRunner"
import type * as Duration from "effect/Duration"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as RpcSerialization from "effect/rpc/RpcSerialization"
import type * as SocketServer from "effect/socket/SocketServer"
import type * as SqlClient from "effect/sql/SqlClient"
import type * as SqlError from "effect/sql/SqlError"

/**
 * Settings shared by runners and clients. `prefix` names the cluster's tables (`<prefix>_runners`, `_locks`,
 * `_messages`, `_replies`; default `evently_cluster`): processes with the same prefix on the same database form one
 * cluster. `shardsPerGroup` (default 300) must be the same in every process. `sharding` passes any other
 * `ShardingConfig` setting through (health checks, poll intervals, lock expiry).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly prefix?: string | undefined
  readonly shardsPerGroup?: number | undefined
  readonly sharding?: Partial<ShardingConfig.ShardingConfig["Service"]> | undefined
}

/**
 * Where a runner listens: `host` and `port` are what other runners dial (so not `0.0.0.0`); `listenHost` is the
 * interface it binds (default `host`). `entityMaxIdleTime` (default 1 minute) passivates idle streams.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunnerOptions extends Options {
  readonly host: string
  readonly port: number
  readonly listenHost?: string | undefined
  readonly entityMaxIdleTime?: Duration.Input | undefined
}

/**
 * The default prefix of the cluster's tables.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultPrefix = "evently_cluster"

const configLayer = (options: Options, runner: RunnerOptions | undefined) =>
  ShardingConfig.layer({
    shardsPerGroup: options.shardsPerGroup ?? 300,
    // A runner whose process died is noticed by the next health check: check often enough to move its shards soon.
    runnerHealthCheckInterval: "5 seconds",
    ...options.sharding,
    runnerAddress: runner === undefined ? Option.none() : Option.some(RunnerAddress.make(runner.host, runner.port)),
    runnerListenAddress:
      runner?.listenHost === undefined
        ? Option.none()
        : Option.some(RunnerAddress.make(runner.listenHost, runner.port)),
    ...(runner?.entityMaxIdleTime === undefined ? {} : { entityMaxIdleTime: runner.entityMaxIdleTime })
  })

const storageLayer = (prefix: string) =>
  Layer.mergeAll(
    SqlMessageStorage.layerWith({ prefix }).pipe(Layer.provide(NodeCrypto.layerDigest)),
    SqlRunnerStorage.layerWith({ prefix })
  )

/**
 * Joins the cluster as a runner: it listens on `host:port`, takes its share of the shards, and runs the entities
 * and singletons registered on it (provide `StreamEntity.layer`s and `ClusterSubscriptions` layers with it).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: RunnerOptions
): Layer.Layer<
  Sharding.Sharding | Runners.Runners | MessageStorage.MessageStorage,
  SocketServer.SocketServerError | SqlError.SqlError,
  SqlClient.SqlClient
> =>
  SocketRunner.layer.pipe(
    Layer.provide([layerSocketServer, layerClientProtocol]),
    Layer.provide(RunnerHealth.layerPing.pipe(Layer.provide(Runners.layerRpc), Layer.provide(layerClientProtocol))),
    Layer.provideMerge(storageLayer(options.prefix ?? defaultPrefix)),
    Layer.provide(configLayer(options, options)),
    Layer.provide(RpcSerialization.layerSchemaBinary())
  )

/**
 * Joins the cluster as a client only: it sends messages to the runners and runs no entities.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClientOnly = (
  options: Options = {}
): Layer.Layer<
  Sharding.Sharding | Runners.Runners | MessageStorage.MessageStorage,
  SqlError.SqlError,
  SqlClient.SqlClient
> =>
  SocketRunner.layerClientOnly.pipe(
    Layer.provide(layerClientProtocol),
    Layer.provideMerge(storageLayer(options.prefix ?? defaultPrefix)),
    Layer.provide(configLayer(options, undefined)),
    Layer.provide(RpcSerialization.layerSchemaBinary())
  )

/**
 * One in-process runner with in-memory cluster storage, for unit tests of code that sends commands to stream
 * entities (the `EventStore` may be the memory one). Messages cross a simulated serialization, as between processes;
 * `MemoryDriver` shows what persisted messages were stored.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerTest: Layer.Layer<
  Sharding.Sharding | Runners.Runners | MessageStorage.MessageStorage | MessageStorage.MemoryDriver
> = TestRunner.layer
