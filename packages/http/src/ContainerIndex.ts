/**
 * The list of a container type's instances (`GET /tasks`): an in-memory read model that a subscription over the
 * category keeps, holding each container's control state, stream version and machine revision. It is eventually
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
  readonly list: (options?: ListOptions) => Effect.Effect<Page>
  /** Waits until the index has seen every event of the category committed before the call. */
  readonly waitUntilCaughtUp: (options?: {
    readonly timeout?: Duration.Input | undefined
  }) => Effect.Effect<void, Subscriptions.SubscriptionError | Subscriptions.CaughtUpTimeout>
}

/**
 * What an index is built from: the category of the streams, the machine and codec of their events, and the
 * subscription's name (default `http-index-<category>`). The index lives in memory and is rebuilt from the beginning
 * of the log on each start, so its subscription is ephemeral: no checkpoint row, no lock, nothing left behind, and
 * any number of processes (or indexes in one process) may share the name.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<E extends Machine.Tagged, Data> {
  readonly category: string
  readonly machine: Machine.Machine<E, Data>
  readonly codec: EventCodec.EventCodec<E>
  readonly subscription?: string | undefined
}

/**
 * The largest page `list` returns.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxLimit = 500

/**
 * Starts the subscription that keeps the index (a fiber in the current scope) and returns the index. A stored event
 * that does not decode with the codec stops the index's subscription (with the error logged).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E extends Machine.Tagged, Data>(
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
