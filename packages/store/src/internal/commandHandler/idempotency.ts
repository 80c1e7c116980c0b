/**
 * A command handler's idempotency: the events a command id produced (found while loading, or searched for when a
 * snapshot hid them), and the result of a command handled before, described as its first handling.
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type { Handled, LoadError } from "../../CommandHandler.ts"
import type * as EventCodec from "../../EventCodec.ts"
import type * as StreamName from "../../StreamName.ts"

/** The events a command id produced, as found in a stream. */
export interface Found<Event> {
  readonly version: number
  readonly events: Array<Event>
  readonly positions: Array<bigint>
}

/** Adds one event to what a command id produced. */
export const collect = <Event>(
  found: Found<Event> | undefined,
  recorded: { readonly streamVersion: number; readonly event: Event; readonly position: bigint }
): Found<Event> => ({
  version: recorded.streamVersion,
  events: [...(found?.events ?? []), recorded.event],
  positions: [...(found?.positions ?? []), recorded.position]
})

/** Idempotency for one handler; `stateAt` folds a stream's first events. */
export const make = <Event extends { readonly _tag: string }, State>(
  typed: EventCodec.TypedEventStore<Event>,
  stateAt: (stream: StreamName.StreamName, version: number) => Effect.Effect<State, LoadError>
) => {
  /** Searches the whole stream for the events a command id produced (when a snapshot hid them). */
  const findCommand = Effect.fnUntraced(function* (stream: StreamName.StreamName, commandId: string) {
    let found: Found<Event> | undefined
    yield* typed.readStream(stream).pipe(
      Stream.filter((recorded) => recorded.metadata.causationId === commandId),
      Stream.runForEach((recorded) =>
        Effect.sync(() => {
          found ??= { version: 0, events: [], positions: [] }
          found = {
            version: recorded.streamVersion,
            events: [...found.events, recorded.event],
            positions: [...found.positions, recorded.position]
          }
        })
      )
    )
    return found
  })

  /** The result of a command handled before: what it produced, and the state right after it. */
  const duplicateOf = (stream: StreamName.StreamName, found: Found<Event>, attempts: number) =>
    Effect.map(stateAt(stream, found.version), (state): Handled<Event, State> => ({
      stream,
      version: found.version,
      events: found.events,
      positions: found.positions,
      state,
      attempts,
      duplicate: true
    }))

  return { findCommand, duplicateOf }
}
