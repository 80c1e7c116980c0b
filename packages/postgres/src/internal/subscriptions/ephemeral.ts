/**
 * Ephemeral subscriptions of this process: their cursors live here (for `status` and `waitUntilCaughtUp`, while
 * they run), and so do their parked events; nothing is written to the database.
 */
import * as Subscriptions from "@evently/store/Subscriptions"
import * as Effect from "effect/Effect"
import type * as SqlClient from "effect/sql/SqlClient"
import type * as PgSchema from "../../PgSchema.ts"
import type { CheckpointStore } from "./checkpoint.ts"
import { type Cursor, describeError, filterOf, isAfter, type StoredFilter } from "./cursor.ts"
import * as Start from "./start.ts"

/** An ephemeral subscription running in this process: its cursor, for `status` and `waitUntilCaughtUp`. */
interface EphemeralCursor {
  readonly partition: number
  readonly partitions: number
  readonly filter: StoredFilter
  cursor: Cursor
}

/** Across the sessions of one partition of one `subscribe` call: where an ephemeral subscription has got to. */
export interface Holder {
  cursor: Cursor | undefined
}

/** A checkpoint as `status` and `waitUntilCaughtUp` read it. */
export interface CheckpointRow {
  readonly partition: number
  readonly partitions: number
  readonly tx: string
  readonly pos: bigint
  readonly filter: StoredFilter
}

/** The ephemeral subscriptions of one service. */
export const makeRegistry = (sql: SqlClient.SqlClient, t: PgSchema.TableNames) => {
  const running = new Map<string, Set<EphemeralCursor>>()
  const parkedEvents: Array<Subscriptions.ParkedEvent> = []

  // The cursor lives in `holder` (so a reconnect resumes from it) and in the registry while the session runs.
  const checkpoint = Effect.fnUntraced(function* (
    name: string,
    partition: number,
    opts: Subscriptions.SubscribeOptions | undefined,
    holder: Holder
  ) {
    holder.cursor ??= yield* Start.resolve(sql, t, name, opts?.start ?? Subscriptions.Beginning)
    const entry: EphemeralCursor = {
      partition,
      partitions: Math.max(1, opts?.partitions ?? 1),
      filter: filterOf(opts),
      cursor: holder.cursor
    }
    const entries = running.get(name) ?? new Set()
    running.set(name, entries.add(entry))
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        entries.delete(entry)
        if (entries.size === 0) running.delete(name)
      })
    )
    return {
      initial: holder.cursor,
      advance: () => Effect.void,
      advanceInTransaction: () => Effect.void,
      committed: (to) => {
        holder.cursor = to
        entry.cursor = to
      },
      park: (event, error) =>
        Effect.andThen(
          Effect.sync(() => {
            parkedEvents.push(Subscriptions.parkedEvent(name, partition, event, describeError(error)))
          }),
          Effect.logWarning(`Subscription '${name}' (ephemeral) parked event ${event.eventId}: ${describeError(error)}`)
        )
    } satisfies CheckpointStore
  })

  // The least advanced cursor of each partition among the ephemeral subscriptions of that name running now.
  const rows = (name: string): ReadonlyArray<CheckpointRow> => {
    const slowest = new Map<number, EphemeralCursor>()
    for (const entry of running.get(name) ?? []) {
      const known = slowest.get(entry.partition)
      if (known === undefined || isAfter(known.cursor, entry.cursor)) slowest.set(entry.partition, entry)
    }
    return [...slowest.values()]
      .sort((a, b) => a.partition - b.partition)
      .map((entry) => ({
        partition: entry.partition,
        partitions: entry.partitions,
        tx: String(entry.cursor.tx),
        pos: entry.cursor.pos,
        filter: entry.filter
      }))
  }

  return {
    checkpoint,
    rows,
    parked: (name: string) => parkedEvents.filter((event) => event.subscription === name)
  }
}
