/**
 * A command handler's snapshots: the newest usable one to start a load from, and saving one when the policy asks.
 * Neither ever fails a command: a snapshot that cannot be loaded, decoded or saved is logged and done without.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { Loaded, SnapshotOptions } from "../../CommandHandler.ts"
import * as SnapshotPolicy from "../../SnapshotPolicy.ts"
import * as Snapshots from "../../Snapshots.ts"
import type * as StreamName from "../../StreamName.ts"

/** Loading and saving a handler's snapshots. */
export interface Snapshotting<State> {
  readonly load: (stream: StreamName.StreamName) => Effect.Effect<Option.Option<readonly [number, State]>>
  readonly save: (
    stream: StreamName.StreamName,
    loaded: Loaded<State>,
    version: number,
    state: State
  ) => Effect.Effect<boolean>
}

/** Without snapshot options: nothing to load, nothing saved. */
export const none = <State>(): Snapshotting<State> => ({
  load: () => Effect.succeed(Option.none()),
  save: () => Effect.succeed(false)
})

/** The snapshots of a handler with `snapshotOptions`, in the given snapshot store. */
export const make = <State, Encoded>(
  snapshots: Snapshots.Snapshots["Service"],
  snapshotOptions: SnapshotOptions<State, Encoded>
): Snapshotting<State> => {
  const schemaVersion = snapshotOptions.schemaVersion ?? 1
  const decodeState = Schema.decodeUnknownEffect(snapshotOptions.schema)
  const encodeState = Schema.encodeEffect(snapshotOptions.schema)

  /** The newest usable snapshot, or nothing (with a warning when one exists but cannot be used). */
  const load = Effect.fnUntraced(function* (stream: StreamName.StreamName) {
    if (snapshots === undefined || decodeState === undefined) return Option.none<readonly [number, State]>()
    const loaded = yield* snapshots
      .load(stream)
      .pipe(
        Effect.catchCause((cause) =>
          Effect.as(
            Effect.logWarning(`Snapshot of '${stream}' could not be loaded; folding from the first event`, cause),
            Option.none<Snapshots.Snapshot>()
          )
        )
      )
    if (Option.isNone(loaded)) return Option.none<readonly [number, State]>()
    const snapshot = loaded.value
    if (snapshot.schemaVersion !== schemaVersion) {
      yield* Effect.logWarning(
        `Snapshot of '${stream}' at version ${snapshot.version} has schema version ${snapshot.schemaVersion}, ` +
          `not ${schemaVersion}; ignored, folding from the first event`
      )
      return Option.none<readonly [number, State]>()
    }
    return yield* decodeState(snapshot.state).pipe(
      Effect.map((state) => Option.some([snapshot.version, state] as const)),
      Effect.catchCause((cause) =>
        Effect.as(
          Effect.logWarning(
            `Snapshot of '${stream}' at version ${snapshot.version} does not decode; ignored, folding from the first event`,
            cause
          ),
          Option.none<readonly [number, State]>()
        )
      )
    )
  })

  /** Saves a snapshot when the policy asks for one; says whether it did (a failure is logged, never raised). */
  const save = (stream: StreamName.StreamName, loaded: Loaded<State>, version: number, state: State) => {
    return Effect.gen(function* () {
      const policy = snapshotOptions?.policy ?? (yield* SnapshotPolicy.SnapshotPolicy)
      if (!policy({ stream, version, snapshotVersion: loaded.snapshotVersion, state })) return false
      const encoded = yield* encodeState(state)
      yield* snapshots.save({ stream, version, schemaVersion, state: encoded })
      return true
    }).pipe(
      Effect.catchCause((cause) =>
        Effect.as(
          Effect.logWarning(
            `Snapshot of '${stream}' at version ${version} was not saved; the command succeeded`,
            cause
          ),
          false
        )
      )
    )
  }

  return { load, save }
}
