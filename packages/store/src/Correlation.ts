/**
 * The correlation id of the work in progress: set it once where a request or a consumed event enters, and every
 * command handled inside (handlers called from handlers included) writes it on the events it produces.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import type * as EventStore from "./EventStore.ts"

/**
 * The current correlation id, `undefined` when none was set (a command handler then uses the command id).
 *
 * @since 0.1.0
 * @category services
 */
export class Correlation extends Context.Reference<string | undefined>("@evently/store/Correlation", {
  defaultValue: () => undefined
}) {}

/**
 * The current correlation id, if one was set.
 *
 * @since 0.1.0
 * @category accessors
 */
export const current: Effect.Effect<string | undefined> = Effect.gen(function* () {
  return yield* Correlation
})

/**
 * Runs an effect with the given correlation id.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withId: {
  (id: string): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, id: string): Effect.Effect<A, E, R>
} = dual(2, <A, E, R>(self: Effect.Effect<A, E, R>, id: string) => Effect.provideService(self, Correlation, id))

/**
 * Runs an effect in the correlation of a consumed event: its own correlation id, or its event id when it has none.
 * For subscription handlers that handle commands in reaction to events.
 *
 * @since 0.1.0
 * @category combinators
 */
export const fromEvent: {
  (
    event: Pick<EventStore.RecordedEvent, "eventId" | "metadata">
  ): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    event: Pick<EventStore.RecordedEvent, "eventId" | "metadata">
  ): Effect.Effect<A, E, R>
} = dual(2, <A, E, R>(self: Effect.Effect<A, E, R>, event: Pick<EventStore.RecordedEvent, "eventId" | "metadata">) =>
  withId(self, event.metadata.correlationId ?? event.eventId)
)
