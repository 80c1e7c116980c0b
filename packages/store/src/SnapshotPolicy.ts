/**
 * When a command handler saves a snapshot of the state it just produced: every N events, or a predicate on the
 * stream, version and state. A context reference replaced by a layer; a handler's own option wins over it.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Layer from "effect/Layer"

/**
 * What a policy sees after a successful append: the stream's new `version`, the version of the snapshot the state
 * was loaded from (`snapshotVersion`, 0 when none) and the new state.
 *
 * @since 0.1.0
 * @category models
 */
export interface Input<State = unknown> {
  readonly stream: string
  readonly version: number
  readonly snapshotVersion: number
  readonly state: State
}

/**
 * Whether to save a snapshot now.
 *
 * @since 0.1.0
 * @category models
 */
export type Policy<State = unknown> = (input: Input<State>) => boolean

/**
 * Saves when at least `n` events were appended since the snapshot the state was loaded from, so a load reads fewer
 * than `n` events after its snapshot (as long as the stream is written through handlers with this policy).
 *
 * @since 0.1.0
 * @category constructors
 */
export const every =
  (n: number): Policy =>
  (input) =>
    input.version - input.snapshotVersion >= n

/**
 * Saves when the predicate holds.
 *
 * @since 0.1.0
 * @category constructors
 */
export const when = <State = unknown>(predicate: (input: Input<State>) => boolean): Policy<State> => predicate

/**
 * Never saves.
 *
 * @since 0.1.0
 * @category constructors
 */
export const never: Policy = () => false

/**
 * The policy handlers with snapshots use unless their options name one: {@link every}(100) by default.
 *
 * @since 0.1.0
 * @category services
 */
export class SnapshotPolicy extends Context.Reference<Policy>("@evently/store/SnapshotPolicy", {
  defaultValue: () => every(100)
}) {}

/**
 * Provides a snapshot policy.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (policy: Policy): Layer.Layer<never> => Layer.succeed(SnapshotPolicy, policy)
