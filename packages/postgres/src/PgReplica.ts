/**
 * Reads from a streaming replica (a hot standby of the primary, by physical replication). Appends, checkpoints,
 * leases, snapshots and transactional projections stay on the primary; what can be served from the replica is offered
 * as services of their own, so that nothing reads from it by accident:
 *
 * - {@link ReplicaReads}: `readStream`, `readCategories`, `readAll` and `streamVersion` of the event store, on the
 *   replica. The `EventStore` that a `CommandHandler` uses stays on the primary: a decider that loaded a stale state
 *   would only lose its append to a `WrongExpectedVersion` and retry.
 * - `PgSubscriptions` with `reads: "replica"` (or `PgSubscriptions.layerReplica`, which provides
 *   {@link ReplicaSubscriptions}): plain subscriptions that read their events from the replica and keep their
 *   checkpoint and lease on the primary.
 *
 * What is consistent: a replica is behind the primary by its replay lag. A read on it returns a state the primary had
 * (committed transactions only, never a transaction in part), but maybe not the latest one: what a process has just
 * appended may not be there yet, so read-your-writes reads go to the primary, or first wait for {@link caughtUp}. A
 * subscription reading from the replica delivers every matching event once the replica has replayed it, in the same
 * `(transaction_id, position)` order, with no gap, as it would on the primary (see docs/replicas.md for why the
 * cursor stays gap-free on a hot standby), only later.
 *
 * @since 0.1.0
 */
import { PgClient } from "@effect/sql-pg"
import type { EventStore } from "@evently/store"
import type * as Subscriptions from "@evently/store/Subscriptions"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Reactivity from "effect/reactivity/Reactivity"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as SqlClient from "effect/sql/SqlClient"
import type * as SqlError from "effect/sql/SqlError"
import * as PgEventStore from "./PgEventStore.ts"
import * as Position from "./internal/subscriptions/replica.ts"

/**
 * The connection pool of the streaming replica, beside the primary's `SqlClient`.
 *
 * @since 0.1.0
 * @category services
 */
export class Replica extends Context.Service<Replica, { readonly sql: SqlClient.SqlClient }>()(
  "@evently/postgres/PgReplica/Replica"
) {}

const fromClient = <E, R>(client: Effect.Effect<PgClient.PgClient, E, R>) =>
  Layer.effect(
    Replica,
    Effect.map(client, (sql) => Replica.of({ sql }))
  ).pipe(Layer.provide(Reactivity.layer))

/**
 * A pool of connections to the replica (`config` as for `PgClient.layer`: `url`, or `host`, `port`, `database`, …).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (config: PgClient.PgPoolConfig): Layer.Layer<Replica, SqlError.SqlError> =>
  fromClient(PgClient.make(config))

/**
 * A pool of connections to the replica, configured through `Config` as for `PgClient.layerConfig` (for example
 * `{ url: Config.Redacted("REPLICA_URL") }`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Wrap<PgClient.PgPoolConfig>
): Layer.Layer<Replica, Config.ConfigError | SqlError.SqlError> =>
  fromClient(Effect.flatMap(Config.unwrap(config), PgClient.make))

/**
 * What {@link ReplicaReads} offers: the reads of `EventStore`, with the same options, errors and order. No `append`:
 * a replica is read-only.
 *
 * @since 0.1.0
 * @category models
 */
export type Reads = Pick<
  EventStore.EventStore["Service"],
  "readStream" | "readCategories" | "readAll" | "streamVersion"
>

/**
 * The event store's reads served by the replica: what the primary had committed when the replica last replayed, so
 * maybe not the latest appends (see the module). Not an `EventStore`: a command handler keeps loading from the
 * primary.
 *
 * @since 0.1.0
 * @category services
 */
export class ReplicaReads extends Context.Service<ReplicaReads, Reads>()("@evently/postgres/PgReplica/ReplicaReads") {}

/**
 * {@link ReplicaReads}: `PgEventStore`'s reads, on the replica's pool (table names from `PgSchema.Tables`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerReads: Layer.Layer<ReplicaReads, never, Replica> = Layer.effect(
  ReplicaReads,
  Effect.gen(function* () {
    const { sql } = yield* Replica
    const store = yield* Effect.provideService(
      PgEventStore.make({ notify: false, groupCommit: false }),
      SqlClient.SqlClient,
      sql
    )
    return ReplicaReads.of({
      readStream: store.readStream,
      readCategories: store.readCategories,
      readAll: store.readAll,
      streamVersion: store.streamVersion
    })
  })
)

/**
 * Subscriptions that read their events from the replica, their checkpoints and leases on the primary: a service of
 * its own, so that an app can run these beside the primary's `Subscriptions` (which its projections use). Provided by
 * `PgSubscriptions.layerReplica`.
 *
 * @since 0.1.0
 * @category services
 */
export class ReplicaSubscriptions extends Context.Service<
  ReplicaSubscriptions,
  Subscriptions.Subscriptions["Service"]
>()("@evently/postgres/PgReplica/ReplicaSubscriptions") {}

/**
 * {@link caughtUp} waited longer than its timeout: the replica is that far behind (or no longer replicating).
 *
 * @since 0.1.0
 * @category errors
 */
export class ReplicaLagTimeout extends Schema.TaggedError<ReplicaLagTimeout>("@evently/postgres/ReplicaLagTimeout")(
  "ReplicaLagTimeout",
  { lsn: Schema.String, timeout: Schema.String }
) {
  override get message(): string {
    return `The replica did not replay the primary's WAL up to ${this.lsn} within ${this.timeout}`
  }
}

/**
 * Whether the replica has replayed the WAL up to `lsn` (always true on a server that is not in recovery).
 *
 * @since 0.1.0
 * @category utils
 */
export const replayedTo = (replica: SqlClient.SqlClient, lsn: string): Effect.Effect<boolean, SqlError.SqlError> =>
  Effect.map(Position.replayedTo(replica, lsn), (rows) => rows[0]!.done)

/**
 * Waits until the replica has replayed everything the primary had written when this started (its WAL insert
 * position, as the end of its last record), so a read on the replica after it sees every transaction that had committed on the primary before it:
 * read-your-writes on the replica, at the cost of the replay lag. Fails with {@link ReplicaLagTimeout} after `timeout`
 * (default 10 seconds).
 *
 * @since 0.1.0
 * @category utils
 */
export const caughtUp = Effect.fn("PgReplica.caughtUp")(function* (options?: {
  readonly timeout?: Duration.Input | undefined
}) {
  const primary = yield* SqlClient.SqlClient
  const { sql } = yield* Replica
  const timeout = Duration.fromInputUnsafe(options?.timeout ?? "10 seconds")
  const [row] = yield* Position.primaryPosition(primary)
  const lsn = row!.lsn
  yield* Effect.repeat(replayedTo(sql, lsn), {
    until: (done: boolean) => done,
    schedule: Schedule.exponential("2 millis").pipe(
      Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.millis(50))))
    )
  }).pipe(
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () => Effect.fail(new ReplicaLagTimeout({ lsn, timeout: Duration.format(timeout) }))
    })
  )
})
