/**
 * The config module through which `evently` finds the application's codecs, machines and projections: a file
 * (`evently.config.ts` in the working directory, or the one `--config` names) whose default export is an
 * {@link EventlyConfig}. Node loads a `.ts` config directly (type stripping, on by default since Node 22.18); `.js` and
 * `.mjs` work too.
 *
 * ```ts
 * // evently.config.ts
 * import { EventlyConfig } from "@evently/cli"
 * import { Machine, Rule } from "@evently/machine"
 * import { EventCodec } from "@evently/store"
 * import * as Schema from "effect/Schema"
 *
 * const TaskEvent = Schema.TaggedUnion({ Created: { title: Schema.String }, Started: {} })
 * const TaskMachine = Machine.make(TaskEvent, {
 *   Created: { follows: Rule.nothing() },
 *   Started: { follows: Rule.event("Created") }
 * })
 *
 * export default EventlyConfig.define({
 *   codecs: { task: EventCodec.make(TaskEvent) },
 *   machines: { task: EventlyConfig.machine(TaskMachine) }
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Graph from "@evently/machine/Graph"
import type * as Machine from "@evently/machine/Machine"
import type * as EventCodec from "@evently/store/EventCodec"
import type * as Projection from "@evently/store/Projection"
import * as PgSchema from "@evently/postgres/PgSchema"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { existsSync } from "node:fs"
import { isAbsolute, resolve } from "node:path"
import { pathToFileURL } from "node:url"

/**
 * What `verify` needs of a codec: its `decode` (any `EventCodec` has it).
 *
 * @since 0.1.0
 * @category models
 */
export type Decoder = Pick<EventCodec.EventCodec<{ readonly _tag: string }>, "decode">

/**
 * A machine as `evently diagram` shows it: its graph and Mermaid text (see {@link machine}).
 *
 * @since 0.1.0
 * @category models
 */
export interface MachineDiagram {
  readonly graph: Graph.Graph<string>
  readonly mermaid: string
}

/**
 * A machine for the config module's `machines`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const machine = <E extends Machine.Tagged, Data>(m: Machine.Machine<E, Data>): MachineDiagram => ({
  graph: Graph.make(m),
  mermaid: Graph.toMermaid(m)
})

/**
 * What a config module exports: `codecs` by category (the key `"*"` decodes the categories no other key names),
 * `machines` (each made with {@link machine}) by the name `evently diagram` takes, the table `projections`
 * (`Projection.make` with tables) by the name `evently rebuild` takes (their handlers may use only the `SqlClient`),
 * and the table prefix when the application uses one other than `evently_`.
 *
 * @since 0.1.0
 * @category models
 */
export interface EventlyConfig {
  readonly codecs?: { readonly [category: string]: Decoder } | undefined
  readonly machines?: { readonly [name: string]: MachineDiagram } | undefined
  readonly projections?: { readonly [name: string]: Projection.Projection<unknown, unknown> } | undefined
  readonly tablePrefix?: string | undefined
}

/**
 * Types a config module's default export.
 *
 * @since 0.1.0
 * @category constructors
 */
export const define = (config: EventlyConfig): EventlyConfig => config

/**
 * The config module could not be found, loaded, or is not an {@link EventlyConfig}; `reason` says which.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidConfig extends Schema.TaggedError<InvalidConfig>("@evently/cli/InvalidConfig")("InvalidConfig", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Config module ${this.path}: ${this.reason}`
  }
}

/**
 * The file names looked for in the working directory when `--config` is not given, in order.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultFiles: ReadonlyArray<string> = ["evently.config.ts", "evently.config.mjs", "evently.config.js"]

const shapeProblem = (value: unknown): string | undefined => {
  if (typeof value !== "object" || value === null) return "its default export is not an object"
  const config = value as Record<string, unknown>
  for (const key of ["codecs", "machines", "projections"]) {
    const entry = config[key]
    if (entry !== undefined && (typeof entry !== "object" || entry === null)) return `${key} is not an object`
  }
  for (const [category, codec] of Object.entries((config.codecs ?? {}) as Record<string, unknown>)) {
    if (typeof codec !== "object" || codec === null || typeof (codec as { decode?: unknown }).decode !== "function") {
      return `codecs.${category} is not an EventCodec (make one with EventCodec.make)`
    }
  }
  for (const [name, entry] of Object.entries((config.machines ?? {}) as Record<string, unknown>)) {
    if (typeof entry !== "object" || entry === null || typeof (entry as { mermaid?: unknown }).mermaid !== "string") {
      return `machines.${name} is not a machine diagram (wrap the machine with EventlyConfig.machine)`
    }
  }
  for (const [name, entry] of Object.entries((config.projections ?? {}) as Record<string, unknown>)) {
    if (typeof entry !== "object" || entry === null || !Array.isArray((entry as { sources?: unknown }).sources)) {
      return `projections.${name} is not a Projection (make one with Projection.make)`
    }
  }
  if (config.tablePrefix !== undefined && typeof config.tablePrefix !== "string") return "tablePrefix is not a string"
  return config.tablePrefix === undefined ? undefined : prefixProblem(config.tablePrefix)
}

// The prefix as `PgSchema.tableNames` takes it: its refusal here, where it is a config problem, not later as a crash.
const prefixProblem = (prefix: string): string | undefined => {
  try {
    PgSchema.tableNames(prefix)
    return undefined
  } catch (error) {
    return `tablePrefix: ${error instanceof Error ? error.message : String(error)}`
  }
}

/**
 * Loads the config module at `path` (relative to the working directory), or the first of {@link defaultFiles} that
 * exists; with neither, an empty config (the commands that need none still work).
 *
 * @since 0.1.0
 * @category loading
 */
export const load = Effect.fn("EventlyConfig.load")(function* (path?: string | undefined) {
  const cwd = process.cwd()
  const file =
    path === undefined
      ? defaultFiles.map((name) => resolve(cwd, name)).find((candidate) => existsSync(candidate))
      : isAbsolute(path)
        ? path
        : resolve(cwd, path)
  if (file === undefined) return {} as EventlyConfig
  if (!existsSync(file)) return yield* new InvalidConfig({ path: file, reason: "no such file" })
  const module = yield* Effect.tryPromise({
    try: () => import(pathToFileURL(file).href) as Promise<{ readonly default?: unknown }>,
    catch: (cause) =>
      new InvalidConfig({ path: file, reason: `it does not load: ${cause instanceof Error ? cause.message : cause}` })
  })
  const config = module.default ?? module
  const problem = shapeProblem(config)
  if (problem !== undefined) return yield* new InvalidConfig({ path: file, reason: problem })
  return config as EventlyConfig
})
