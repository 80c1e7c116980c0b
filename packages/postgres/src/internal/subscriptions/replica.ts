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

/**
 * The primary's WAL insert position as the end of its last record: a position just after a page header (the
 * segment's first page after a WAL switch, as `pg_backup_stop` and `pg_switch_wal` leave it) is taken back to the
 * page boundary, where a replica's replay position stops when no record follows; else a replica that replayed
 * everything would wait for the next write on the primary.
 */
export const primaryPosition = (sql: SqlClient.SqlClient) =>
  sql<{ lsn: string }>`with here as (
      select pg_current_wal_insert_lsn() as lsn, pg_current_wal_insert_lsn() - '0/0'::pg_lsn as bytes,
        current_setting('wal_block_size')::numeric as block
    )
    select (case when mod(bytes, block) in (24, 40) then lsn - mod(bytes, block) else lsn end)::text as lsn
    from here`

/** Whether the replica has replayed the WAL up to `lsn` (always true on a server that is not in recovery). */
export const replayedTo = (sql: SqlClient.SqlClient, lsn: string) =>
  sql<{ done: boolean }>`select coalesce(pg_last_wal_replay_lsn() >= ${lsn}::pg_lsn, true) as done`

/** Waits until `replica` has replayed what the primary had written when it started, or for `poll` at most. */
export const afterWake = (
  sql: SqlClient.SqlClient,
  primary: SessionConnection,
  replica: SessionConnection,
  poll: Duration.Duration
) =>
  Effect.gen(function* () {
    const [row] = yield* primary.query<{ lsn: string }>("primary WAL position", primaryPosition(sql))
    const replayed = replica
      .query<{ done: boolean }>("replica replay position", replayedTo(sql, row!.lsn))
      .pipe(Effect.map((rows) => rows[0]!.done))
    yield* Effect.repeat(replayed, {
      until: (done: boolean) => done,
      schedule: Schedule.exponential("2 millis").pipe(
        Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.millis(50))))
      )
    }).pipe(Effect.timeoutOption(poll))
  })
