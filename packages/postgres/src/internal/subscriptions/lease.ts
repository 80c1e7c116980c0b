/**
 * The lease on a partition: one active worker per `(subscription, partition)` across processes, as a session
 * advisory lock on the worker's held connection (the holder's death releases it), behind a lock in this process.
 *
 * The advisory lock of a partition is `(hashtext('evently:' || name), partition)`. Two names whose hashes collide
 * only exclude each other's workers: never a correctness problem, since commits compare-and-set the checkpoint.
 */
import * as SubscriptionLifecycle from "@evently/store/SubscriptionLifecycle"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as SqlClient from "effect/sql/SqlClient"
import type { SessionConnection } from "./connection.ts"

/** The text whose `hashtext` is the first key of a subscription's advisory locks. */
export const lockKey = (name: string): string => `evently:${name}`

/** What taking a lease needs. */
export interface LeaseSettings {
  readonly sql: SqlClient.SqlClient
  /**
   * One worker per partition in this process, before the advisory lock that holds across processes: a session
   * advisory lock is re-entrant, so on a database with one session (the embedded PGlite) it would let a second
   * worker of this process in.
   */
  readonly localLeases: SubscriptionLifecycle.LocalLeases
  /** How often a waiting worker tries the advisory lock again. */
  readonly retry: Duration.Duration
}

/**
 * Waits until this worker holds the partition (standby: saying so, with the holder's backend pid, through the session
 * signals), then holds it until the scope closes, and unlocks it on `connection` then.
 */
export const take = Effect.fnUntraced(function* (
  settings: LeaseSettings,
  connection: SessionConnection,
  name: string,
  partition: number
) {
  const { sql } = settings
  const signals = yield* SubscriptionLifecycle.SessionSignals
  yield* SubscriptionLifecycle.takeLocalLease(settings.localLeases, `${partition}:${name}`)
  const tryLock = connection
    .query<{ locked: boolean }>(
      "lock",
      sql`select pg_try_advisory_lock(hashtext(${lockKey(name)}), ${partition}::int) as locked`
    )
    .pipe(Effect.map((rows) => rows[0]!.locked))
  if (!(yield* tryLock)) {
    if (signals.active) yield* signals.leaseWaiting(yield* holderPid(settings, connection, name, partition))
    yield* Effect.repeat(tryLock, {
      until: (locked: boolean) => locked,
      schedule: Schedule.spaced(settings.retry)
    })
  }
  yield* Effect.addFinalizer(() =>
    Effect.ignore(
      connection.query("unlock", sql`select pg_advisory_unlock(hashtext(${lockKey(name)}), ${partition}::int)`)
    )
  )
  yield* signals.leaseTaken
  yield* Effect.logDebug(`Subscription '${name}' partition ${partition}: active`)
})

/** The backend pid of the session holding the partition's advisory lock, if any (it may just have let go). */
export const holderPid = Effect.fnUntraced(function* (
  settings: LeaseSettings,
  connection: SessionConnection,
  name: string,
  partition: number
) {
  const { sql } = settings
  const [row] = yield* connection.query<{ pid: number }>(
    "lock holder",
    sql`select pid from pg_locks
      where locktype = 'advisory' and granted
        and database = (select oid from pg_database where datname = current_database())
        and classid = hashtext(${lockKey(name)})::oid and objid = ${partition}::int::oid and objsubid = 2
      limit 1`
  )
  return row?.pid
})
