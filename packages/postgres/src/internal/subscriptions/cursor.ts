/**
 * The vocabulary the parts of a Postgres subscription session share: the `(transaction_id, position)` cursor, the
 * stored filter and its SQL, the storage-fault wrapper and the metric attributes.
 */
import * as Subscriptions from "@evently/store/Subscriptions"
import type * as SqlClient from "effect/sql/SqlClient"
import type * as Statement from "effect/sql/Statement"

/** A place in the log: the event's transaction id, then its position; compared as a pair. */
export interface Cursor {
  readonly tx: bigint
  readonly pos: bigint
}

/** Whether `a` comes after `b` in `(transaction_id, position)` order. */
export const isAfter = (a: Cursor, b: Cursor): boolean => a.tx > b.tx || (a.tx === b.tx && a.pos > b.pos)

/** A cursor as the store's `Checkpoint`. */
export const toCheckpoint = (cursor: Cursor): Subscriptions.Checkpoint => ({
  transactionId: cursor.tx,
  position: cursor.pos
})

/** The filter stored with a checkpoint, so that `status` and `waitUntilCaughtUp` count what the worker reads. */
export interface StoredFilter {
  readonly categories?: ReadonlyArray<string> | undefined
  readonly eventTypes?: ReadonlyArray<string> | undefined
}

/** The stored filter of a subscription's options. */
export const filterOf = (opts: Subscriptions.SubscribeOptions | undefined): StoredFilter => ({
  ...(opts?.categories === undefined ? {} : { categories: opts.categories }),
  ...(opts?.eventTypes === undefined ? {} : { eventTypes: opts.eventTypes })
})

/** The `and ...` conditions of a read of the events table for this filter and partition. */
export const filterFragment = (
  sql: SqlClient.SqlClient,
  filter: StoredFilter,
  partitions: number,
  partition: number
): Statement.Fragment =>
  sql`${filter.categories === undefined ? sql`` : sql`and category = any(${filter.categories}::text[])`} ${
    filter.eventTypes === undefined ? sql`` : sql`and event_type = any(${filter.eventTypes}::text[])`
  } ${
    partitions <= 1 ? sql`` : sql`and mod(abs(hashtext(stream)::bigint), ${partitions}::bigint) = ${partition}::bigint`
  }`

/** A failure of the database while doing `operation`. */
export const storage =
  (operation: string) =>
  (cause: unknown): Subscriptions.SubscriptionStorageError =>
    new Subscriptions.SubscriptionStorageError({ operation, cause })

/** The attributes of a partition's metrics. */
export const metricAttributes = (subscription: string, partition: number) => ({
  subscription,
  partition: String(partition)
})

/** An error as the text of a parked event. */
export const describeError = (error: unknown): string =>
  error instanceof Error ? error.message : Subscriptions.describeError(error)
