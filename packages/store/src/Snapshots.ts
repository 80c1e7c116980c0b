/**
 * The snapshot port: the newest folded state of a stream, encoded as JSON, with the stream version it was folded up
 * to. A command handler loads it and reads only the events after it. Adapters: `Snapshots.layerMemory` here,
 * `PgSnapshots.layer` in `@evently/postgres`.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as EventStore from "./EventStore.ts"
import * as validate from "./internal/validate.ts"

/**
 * A saved snapshot: the `state` (JSON, as the user's Schema encodes it) after the stream's first `version` events,
 * and the `schemaVersion` of the Schema that encoded it, so a handler can ignore snapshots written by another one.
 *
 * @since 0.1.0
 * @category models
 */
export interface Snapshot {
  readonly stream: string
  readonly version: number
  readonly schemaVersion: number
  readonly state: unknown
}

/**
 * The snapshot service. `save` keeps the newest snapshot of a stream: saving an older version than the one stored
 * changes nothing.
 *
 * @since 0.1.0
 * @category services
 */
export class Snapshots extends Context.Service<
  Snapshots,
  {
    readonly load: (stream: string) => Effect.Effect<Option.Option<Snapshot>, EventStore.StoreError>
    readonly save: (snapshot: Snapshot) => Effect.Effect<void, EventStore.StoreError>
  }
>()("@evently/store/Snapshots") {}

/**
 * Serializes a snapshot's state as JSON text, failing with a `StoreError` when it is not JSON (what every adapter
 * stores).
 *
 * @since 0.1.0
 * @category adapters
 */
export const stateJson = (snapshot: Snapshot): Effect.Effect<string, EventStore.StoreError> =>
  Effect.suspend(() => {
    const problem = validate.jsonProblem(snapshot.state)
    return problem === undefined
      ? Effect.succeed(JSON.stringify(snapshot.state))
      : Effect.fail(
          new EventStore.StoreError({
            operation: "snapshot save",
            cause: new Error(`The snapshot of '${snapshot.stream}' is not JSON: ${problem}`)
          })
        )
  })

/**
 * Builds an in-memory snapshot store (it keeps JSON text, so it hands back copies, as a database would).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<Snapshots["Service"]> = Effect.sync(() => {
  const byStream = new Map<
    string,
    { readonly version: number; readonly schemaVersion: number; readonly json: string }
  >()
  return Snapshots.of({
    load: (stream) =>
      Effect.sync(() =>
        Option.map(Option.fromUndefinedOr(byStream.get(stream)), (row): Snapshot => ({
          stream,
          version: row.version,
          schemaVersion: row.schemaVersion,
          state: JSON.parse(row.json)
        }))
      ),
    save: (snapshot) =>
      Effect.map(stateJson(snapshot), (json) => {
        const stored = byStream.get(snapshot.stream)
        if (stored !== undefined && stored.version > snapshot.version) return
        byStream.set(snapshot.stream, { version: snapshot.version, schemaVersion: snapshot.schemaVersion, json })
      })
  })
})

/**
 * An in-memory {@link Snapshots}: see {@link makeMemory}. Each build starts empty.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<Snapshots> = Layer.effect(Snapshots, makeMemory)
