/**
 * A session that reads its events from a streaming replica: its reads go through a connection held on the replica,
 * its lease, checkpoint and LISTEN stay on the primary. A hot standby delivers no notifications, and a notification
 * from the primary arrives before the replica has replayed the commit that sent it; so after a wake-up the session
 * takes the primary's WAL insert position and waits (polling the replica, at most one poll interval) until the
 * replica has replayed up to it, then reads.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as SqlClient from "effect/sql/SqlClient"
import type { SessionConnection } from "./connection.ts"

/** Waits until `replica` has replayed what the primary had written when it started, or for `poll` at most. */
export const afterWake = (
  sql: SqlClient.SqlClient,
  primary: SessionConnection,
  replica: SessionConnection,
  poll: Duration.Duration
) =>
  Effect.gen(function* () {
    const [row] = yield* primary.query<{ lsn: string }>(
      "primary WAL position",
      sql`select pg_current_wal_insert_lsn()::text as lsn`
    )
    const replayed = replica
      .query<{ done: boolean }>(
        "replica replay position",
        sql`select coalesce(pg_last_wal_replay_lsn() >= ${row!.lsn}::pg_lsn, true) as done`
      )
      .pipe(Effect.map((rows) => rows[0]!.done))
    yield* Effect.repeat(replayed, {
      until: (done: boolean) => done,
      schedule: Schedule.exponential("2 millis").pipe(
        Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.millis(50))))
      )
    }).pipe(Effect.timeoutOption(poll))
  })
