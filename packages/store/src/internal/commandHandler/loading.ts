/**
 * The load/fold/sync steps of a command handler: start from the cached state (checked to still be in the stream) or
 * the newest usable snapshot, fold the events after it, and on a retry go on from the previous attempt's load.
 * While folding it collects the events a command id produced, for idempotency.
 */
import type { Decider } from "@evently/machine"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { LoadError, Loaded } from "../../CommandHandler.ts"
import type * as EventCodec from "../../EventCodec.ts"
import type * as StreamName from "../../StreamName.ts"
import { collect, type Found } from "./idempotency.ts"
import type { Snapshotting } from "./snapshotting.ts"
import type { StateCache } from "./stateCache.ts"

/** A loaded state and the id of the event at its version (unknown when it came from a snapshot alone). */
export interface Known<State> extends Loaded<State> {
  readonly lastEventId: string | undefined
}

/** A load, and what the command ids it looked for produced in the events it read. */
export interface Load<Event, State> {
  readonly loaded: Known<State>
  readonly found: ReadonlyMap<string, Found<Event>>
}

const none: ReadonlySet<string> = new Set()

/** The ids a load looks for: the command's own, when it was given one. */
export const lookFor = (commandId: string | undefined): ReadonlySet<string> =>
  commandId === undefined ? none : new Set([commandId])

/** The loader of one handler. */
export const make = <Command, Event extends { readonly _tag: string }, State, Error>(
  typed: EventCodec.TypedEventStore<Event>,
  decider: Decider.Decider<Command, Event, State, Error>,
  cache: StateCache<StreamName.StreamName, Known<State>>,
  snapshots: Snapshotting<State>
) => {
  /**
   * Loads a stream and collects the events each of `commandIds` produced after the starting point. With `previous` (the
   * load of an earlier attempt of the same command), it goes on from there and reads only the events appended
   * since: a retry after a conflict costs the events that caused it, not the whole stream again.
   */
  const loadStream = Effect.fnUntraced(function* (
    stream: StreamName.StreamName,
    commandIds: ReadonlySet<string>,
    previous?: Load<Event, State>
  ): Effect.fn.Return<Load<Event, State>, LoadError> {
    const fromCache = previous === undefined ? cache.get(stream) : undefined
    const cached = previous?.loaded ?? fromCache
    const [snapshotVersion, initial, startVersion] =
      cached === undefined
        ? Option.match(yield* snapshots.load(stream), {
            onNone: () => [0, decider.initial, 0] as const,
            onSome: ([version, state]) => [version, state, version] as const
          })
        : ([cached.snapshotVersion, cached.state, previous?.loaded.startVersion ?? cached.version] as const)
    let state = initial
    let version = cached?.version ?? snapshotVersion
    let lastEventId = cached?.lastEventId
    // A cached state is checked against the stream: its last event must still be there, at its version (an append
    // in a caller's transaction that was rolled back would otherwise leave a state that never existed).
    const verify = fromCache?.lastEventId
    let unverified = verify !== undefined
    let stale = false
    let eventsRead = 0
    const found = new Map(previous?.found)
    yield* typed.readStream(stream, { from: verify === undefined ? version + 1 : version }).pipe(
      Stream.runForEach((recorded) =>
        Effect.sync(() => {
          if (unverified) {
            unverified = false
            stale = recorded.streamVersion !== version || recorded.eventId !== verify
            return
          }
          if (stale) return
          state = decider.evolve(state, recorded.event)
          version = recorded.streamVersion
          lastEventId = recorded.eventId
          eventsRead++
          const causationId = recorded.metadata.causationId
          if (causationId !== undefined && commandIds.has(causationId)) {
            found.set(causationId, collect(found.get(causationId), recorded))
          }
        })
      )
    )
    if (unverified || stale) {
      cache.delete(stream)
      return yield* loadStream(stream, commandIds)
    }
    const loaded: Known<State> = { stream, version, state, snapshotVersion, startVersion, eventsRead, lastEventId }
    cache.set(loaded)
    return { loaded, found }
  })

  /** The state after the stream's first `version` events, folded from the beginning. */
  const stateAt = (stream: StreamName.StreamName, version: number) =>
    typed.readStream(stream, { from: 1, limit: version }).pipe(
      Stream.runFold(
        () => decider.initial,
        (state, recorded) => decider.evolve(state, recorded.event)
      )
    )

  return { loadStream, stateAt }
}
