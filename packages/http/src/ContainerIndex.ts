/**
 * The list of a container type's instances (`GET /tasks`): a table of its own (`evently_container_index` by default,
 * one row per container, keyed by category and id) that a transactional subscription over the category keeps,
 * committing each row with its checkpoint. It holds each container's control state, stream version and machine
 * revision; being durable, a restart goes on from the checkpoint instead of replaying the category. It is eventually
 * consistent with the store; `waitUntilCaughtUp` makes a read see every write committed before it.
 *
 * @since 0.1.0
 */
import type { Machine } from "@evently/machine"
import { EventCodec, StreamName, Subscriptions } from "@evently/store"
import * as DateTime from "effect/DateTime"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as SqlClient from "effect/sql/SqlClient"
import type * as SqlError from "effect/sql/SqlError"

/**
 * One container as the index knows it: its `id`, control `state` (tags), stream `version`, machine `revision` (bumped
 * by restarting events) and when its last event was recorded.
 *
 * @since 0.1.0
 * @category models
 */
export interface Entry {
  readonly id: string
  readonly state: ReadonlyArray<string>
  readonly version: number
  readonly revision: number
  readonly updatedAt: string
}

/**
 * A page of the index: containers in id order, filtered by a control state, after an id.
 *
 * @since 0.1.0
 * @category models
 */
export interface ListOptions {
  readonly state?: string | undefined
  readonly after?: string | undefined
  readonly limit?: number | undefined
}

/**
 * A page of entries and the cursor of the next page (`undefined` on the last one).
 *
 * @since 0.1.0
 * @category models
 */
export interface Page {
  readonly items: ReadonlyArray<Entry>
  readonly next: string | undefined
}

/**
 * The index of one container type.
 *
 * @since 0.1.0
 * @category models
 */
export interface ContainerIndex {
  /** The name of the subscription that keeps it. */
  readonly subscription: string
  readonly list: (options?: ListOptions) => Effect.Effect<Page, SqlError.SqlError>
  /** Waits until the index has seen every event of the category committed before the call. */
  readonly waitUntilCaughtUp: (options?: {
    readonly timeout?: Duration.Input | undefined
  }) => Effect.Effect<void, Subscriptions.SubscriptionError | Subscriptions.CaughtUpTimeout>
}

/**
 * What the index is kept from: the container type's `category`, its machine and event codec, optionally the
 * subscription's name (default `http-index-<category>`: keep it stable, the checkpoint is stored under it) and the
 * table's (default `evently_container_index`, shared by every category).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<E extends Machine.Tagged, Data> {
  readonly category: string
  readonly machine: Machine.Machine<E, Data>
  readonly codec: EventCodec.EventCodec<E>
  readonly subscription?: string | undefined
  readonly table?: string | undefined
}

/**
 * The largest page `list` returns.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxLimit = 500

/**
 * The default table of the index.
 *
 * @since 0.2.0
 * @category constants
 */
export const defaultTable = "evently_container_index"

interface Row {
  readonly id: string
  readonly tags: ReadonlyArray<string>
  readonly version: number
  readonly revision: number
  readonly updated_at: string
}

/**
 * The durable index: creates its table when it does not exist, starts the transactional subscription that keeps it (a fiber in
 * the current scope) and returns the index. A stored event that does not decode with the codec stops the index's
 * subscription (with the error logged). The table keeps the control state, not the domain data: a container's next
 * state is folded from its stored tags and revision.
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeTable = <E extends Machine.Tagged, Data>(
  options: Options<E, Data>
): Effect.Effect<ContainerIndex, SqlError.SqlError, Subscriptions.Subscriptions | SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const subscriptions = yield* Subscriptions.Subscriptions
    const subscription = options.subscription ?? `http-index-${options.category}`
    const table = sql(options.table ?? defaultTable)
    const { machine, codec, category } = options

    yield* sql`create table if not exists ${table} (
      category text not null,
      id text not null,
      tags text[] not null,
      version integer not null,
      revision integer not null,
      event_count integer not null,
      updated_at text not null,
      primary key (category, id)
    )`

    // Runs inside the subscription's transaction: the row commits with the checkpoint, or neither does.
    const handle = Effect.fnUntraced(function* (recorded: Parameters<typeof codec.decode>[0]) {
      const event = yield* codec.decode(recorded)
      const id = StreamName.id(recorded.stream)
      const rows = yield* sql<{
        readonly tags: ReadonlyArray<string>
        readonly revision: number
        readonly event_count: number
      }>`
        select tags, revision, event_count from ${table} where category = ${category} and id = ${id}`
      const known = rows[0]
      const previous: Machine.State<E["_tag"], Data> =
        known === undefined
          ? machine.initial
          : {
              ...machine.initial,
              tags: known.tags as ReadonlyArray<E["_tag"]>,
              revision: known.revision,
              eventCount: known.event_count
            }
      const state = machine.evolve(previous, event)
      const updatedAt = DateTime.formatIso(recorded.recordedAt)
      yield* sql`insert into ${table} (category, id, tags, version, revision, event_count, updated_at)
        values (${category}, ${id}, ${state.tags}::text[], ${recorded.streamVersion}, ${state.revision},
          ${state.eventCount}, ${updatedAt})
        on conflict (category, id) do update set tags = excluded.tags, version = excluded.version,
          revision = excluded.revision, event_count = excluded.event_count, updated_at = excluded.updated_at`
    })

    yield* subscriptions
      .run(subscription, handle, { categories: [category], start: Subscriptions.Beginning, transactional: true })
      .pipe(
        Effect.tapCause((cause) => Effect.logError(`Container index '${subscription}' stopped`, cause)),
        Effect.forkScoped
      )

    const list = Effect.fnUntraced(function* (listOptions?: ListOptions) {
      const limit = Math.min(maxLimit, Math.max(1, listOptions?.limit ?? 50))
      const state = listOptions?.state ?? null
      const after = listOptions?.after ?? null
      const rows = yield* sql<Row>`select id, tags, version, revision, updated_at from ${table}
        where category = ${category}
          and (${state}::text is null or ${state}::text = any(tags))
          and (${after}::text is null or id > ${after}::text)
        order by id collate "C" limit ${limit + 1}`
      const items = rows.slice(0, limit).map((row): Entry => ({
        id: row.id,
        state: row.tags,
        version: row.version,
        revision: row.revision,
        updatedAt: row.updated_at
      }))
      return { items, next: rows.length > limit ? items[items.length - 1]!.id : undefined } satisfies Page
    })

    return {
      subscription,
      list,
      waitUntilCaughtUp: (waitOptions) => subscriptions.waitUntilCaughtUp(subscription, waitOptions)
    }
  })

/**
 * The index in memory, for stores without SQL (the memory layers): rebuilt from the beginning of the category on each
 * start by an ephemeral subscription (no checkpoint row, nothing left behind). A stored event that does not decode
 * with the codec stops the index's subscription (with the error logged).
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeMemory = <E extends Machine.Tagged, Data>(
  options: Options<E, Data>
): Effect.Effect<ContainerIndex, never, Subscriptions.Subscriptions | Scope.Scope> =>
  Effect.gen(function* () {
    const subscriptions = yield* Subscriptions.Subscriptions
    const subscription = options.subscription ?? `http-index-${options.category}`
    const { machine, codec } = options
    const states = new Map<string, Machine.State<E["_tag"], Data>>()
    const entries = new Map<string, Entry>()
    let sorted: Array<string> | undefined

    const handle = Effect.fnUntraced(function* (recorded: Parameters<typeof codec.decode>[0]) {
      const event = yield* codec.decode(recorded)
      const id = StreamName.id(recorded.stream)
      const state = machine.evolve(states.get(id) ?? machine.initial, event)
      states.set(id, state)
      if (!entries.has(id)) sorted = undefined
      entries.set(id, {
        id,
        state: state.tags,
        version: recorded.streamVersion,
        revision: state.revision,
        updatedAt: DateTime.formatIso(recorded.recordedAt)
      })
    })

    yield* subscriptions
      .run(subscription, handle, { categories: [options.category], start: Subscriptions.Beginning, ephemeral: true })
      .pipe(
        Effect.tapCause((cause) => Effect.logError(`Container index '${subscription}' stopped`, cause)),
        Effect.forkScoped
      )

    const list = (listOptions?: ListOptions): Effect.Effect<Page> =>
      Effect.sync(() => {
        sorted ??= [...entries.keys()].sort()
        const limit = Math.min(maxLimit, Math.max(1, listOptions?.limit ?? 50))
        const after = listOptions?.after
        const items: Array<Entry> = []
        let start = 0
        if (after !== undefined) {
          let low = 0
          let high = sorted.length
          while (low < high) {
            const mid = (low + high) >>> 1
            if (sorted[mid]! <= after) low = mid + 1
            else high = mid
          }
          start = low
        }
        let index = start
        for (; index < sorted.length && items.length < limit; index++) {
          const entry = entries.get(sorted[index]!)!
          if (listOptions?.state === undefined || entry.state.includes(listOptions.state)) items.push(entry)
        }
        const more = items.length === limit && index < sorted.length
        return { items, next: more ? items[items.length - 1]!.id : undefined }
      })

    return {
      subscription,
      list,
      waitUntilCaughtUp: (waitOptions) => subscriptions.waitUntilCaughtUp(subscription, waitOptions)
    }
  })

/**
 * The index of a container type: in a table ({@link makeTable}) when a `SqlClient` is in context, else in memory
 * ({@link makeMemory}).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E extends Machine.Tagged, Data>(
  options: Options<E, Data>
): Effect.Effect<ContainerIndex, SqlError.SqlError, Subscriptions.Subscriptions | Scope.Scope> =>
  Effect.flatMap(Effect.serviceOption(SqlClient.SqlClient), (sql) =>
    sql._tag === "Some"
      ? Effect.provideService(makeTable(options), SqlClient.SqlClient, sql.value)
      : makeMemory(options)
  )
