/**
 * A projection, declared once and independent of where it runs: a name, a version, and per category a codec with
 * one handler per event tag. Each handler gets the decoded event, narrowed to its tag, and a context with the
 * `RecordedEvent` envelope, `replaying` and the physical names of the projection's tables. The categories and event
 * types a projection reads follow from its handlers, so they cannot drift from the codec.
 *
 * Run it here as a consumer (`run`: at-least-once, on any `Subscriptions` layer, the memory one included; or
 * `ephemeral: true` for a view kept in memory and rebuilt on each start), or as a table read model on SQL with
 * blue/green rebuilds through `PgProjections` in `@evently/postgres`.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type * as SqlClient from "effect/sql/SqlClient"
import type * as SqlError from "effect/sql/SqlError"
import type * as EventCodec from "./EventCodec.ts"
import type * as EventStore from "./EventStore.ts"
import * as ReplayBoundary from "./ReplayBoundary.ts"
import * as StreamName from "./StreamName.ts"
import type * as SubscriptionLifecycle from "./SubscriptionLifecycle.ts"
import * as Subscriptions from "./Subscriptions.ts"

/**
 * What a handler gets beside its event: the stored envelope, whether the event is history (committed before this
 * projection version, or this rebuild of it, first started: see `ReplayBoundary`), and the physical name of each
 * declared table in the build being written (empty for a consumer).
 *
 * @since 0.1.0
 * @category models
 */
export interface HandlerContext<T extends string = string> {
  readonly recorded: EventStore.RecordedEvent
  readonly replaying: boolean
  readonly tables: { readonly [K in T]: string }
}

/**
 * One handler per event tag, each optional; the event is narrowed to its tag, the context knows the tables `T`.
 *
 * @since 0.1.0
 * @category models
 */
export type Handlers<A extends { readonly _tag: string }, T extends string = string> = {
  readonly [K in A["_tag"]]?: (
    event: Extract<A, { readonly _tag: K }>,
    context: HandlerContext<T>
  ) => Effect.Effect<void, unknown, unknown>
}

/**
 * The keys of `H` that are not tags of `A`, each typed `never`: intersected with a generic handlers argument, it makes
 * a handler for an unknown tag a compile error (a generic parameter escapes TypeScript's excess-property check).
 *
 * @since 0.1.0
 * @category models
 */
export type OnlyTags<H, A extends { readonly _tag: string }> = {
  readonly [K in Exclude<keyof H, A["_tag"]>]: never
}

type ErrorOf<H> = {
  [K in keyof H]-?: H[K] extends (...args: never) => Effect.Effect<unknown, infer E, unknown> ? E : never
}[keyof H]
type ServicesOf<H> = {
  [K in keyof H]-?: H[K] extends (...args: never) => Effect.Effect<unknown, unknown, infer R> ? R : never
}[keyof H]

/**
 * One category's part of a projection: its codec's handlers, as a decoding dispatcher.
 *
 * @since 0.1.0
 * @category models
 */
export interface Source<E, R> {
  readonly category: string
  readonly eventTypes: ReadonlyArray<string>
  readonly handle: (
    recorded: EventStore.RecordedEvent,
    context: HandlerContext
  ) => Effect.Effect<void, E | EventCodec.EventDecodeError, R>
}

/**
 * The events of `category`, decoded with `codec`, each handled by the handler of its tag. Only the tags with a
 * handler are read; a handler for a tag that is not in the codec does not compile.
 *
 * @since 0.1.0
 * @category constructors
 */
export const on = <A extends { readonly _tag: string }, H extends Handlers<A>>(
  category: string,
  codec: EventCodec.EventCodec<A>,
  handlers: H & OnlyTags<H, A>
): Source<ErrorOf<H>, ServicesOf<H>> => {
  const byTag = handlers as unknown as Readonly<
    Record<string, ((event: A, context: HandlerContext) => Effect.Effect<void, ErrorOf<H>, ServicesOf<H>>) | undefined>
  >
  const eventTypes = Object.keys(handlers).filter((tag) => byTag[tag] !== undefined)
  return {
    category,
    eventTypes,
    handle: (recorded, context) => {
      // Own handlers only: an event typed `toString` or `constructor` must not reach Object.prototype's.
      const handler = eventTypes.includes(recorded.type) ? byTag[recorded.type] : undefined
      if (handler === undefined) return Effect.void
      return Effect.flatMap(codec.decode(recorded), (event) => handler(event, context))
    }
  }
}

/**
 * A table of a table projection: creates it under the physical name it is given (and its indexes, named after it),
 * e.g. `(sql, table) => sql\`create table ${sql(table)} (id text primary key, n int not null)\``.
 *
 * @since 0.1.0
 * @category models
 */
export type TableDefinition = (sql: SqlClient.SqlClient, table: string) => Effect.Effect<unknown, SqlError.SqlError>

/**
 * A table projection's tables, declared before its sources so that their handlers know the tables' names:
 * `const tables = Projection.tables({ items: ... })`, then `tables.on(category, codec, handlers)` (where
 * `ctx.tables.items` is typed, and an undeclared name does not compile) and `Projection.make({ tables, ... })`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Tables<T extends string> {
  readonly definitions: { readonly [K in T]: TableDefinition }
  readonly on: <A extends { readonly _tag: string }, H extends Handlers<A, T>>(
    category: string,
    codec: EventCodec.EventCodec<A>,
    handlers: H & OnlyTags<H, A>
  ) => Source<ErrorOf<H>, ServicesOf<H>>
}

/**
 * Declares a table projection's tables (see {@link Tables}).
 *
 * @since 0.1.0
 * @category constructors
 */
export const tables = <const T extends string>(definitions: { readonly [K in T]: TableDefinition }): Tables<T> => ({
  definitions,
  // The context's tables are the declared ones at runtime; only their type is narrower.
  on: (category, codec, handlers) => on(category, codec, handlers as never)
})

const definitionsOf = (
  declared: Readonly<Record<string, TableDefinition>> | Tables<string> | undefined
): Readonly<Record<string, TableDefinition>> => {
  if (declared === undefined) return {}
  const maybe = declared as Partial<Tables<string>>
  return typeof maybe.on === "function" && typeof maybe.definitions === "object"
    ? maybe.definitions
    : (declared as Readonly<Record<string, TableDefinition>>)
}

/**
 * A projection: its name, its version (a new version is built from the beginning beside the old one), its sources,
 * the categories and event types they read, and its tables (by the name readers use; none for a consumer).
 *
 * @since 0.1.0
 * @category models
 */
export interface Projection<E, R> {
  readonly name: string
  readonly version: number
  readonly sources: ReadonlyArray<Source<E, R>>
  readonly categories: ReadonlyArray<string>
  readonly eventTypes: ReadonlyArray<string>
  readonly tables: Readonly<Record<string, TableDefinition>>
}

type SourceError<S> = S extends Source<infer E, unknown> ? E : never
type SourceServices<S> = S extends Source<unknown, infer R> ? R : never

/**
 * Declares a projection from its sources (see {@link on}) and, for a table projection, its tables.
 *
 * @example
 * ```ts
 * import { EventCodec } from "@evently/store"
 * import * as Projection from "@evently/store/Projection"
 * import * as Effect from "effect/Effect"
 * import * as Schema from "effect/Schema"
 * import * as SqlClient from "effect/sql/SqlClient"
 *
 * const Events = Schema.TaggedUnion({ Opened: { owner: Schema.String }, Closed: {} })
 * const Codec = EventCodec.make(Events)
 *
 * // Readers query the view `owners`; each version writes its own table behind it.
 * export const Owners = Projection.make({
 *   name: "owners",
 *   version: 1,
 *   tables: {
 *     owners: (sql, table) => sql`create table ${sql(table)} (account text primary key, owner text not null)`
 *   },
 *   sources: [
 *     Projection.on("account", Codec, {
 *       Opened: (event, ctx) =>
 *         Effect.flatMap(SqlClient.SqlClient, (sql) =>
 *           sql`insert into ${sql(ctx.tables.owners!)} values (${ctx.recorded.stream}, ${event.owner})`
 *         ),
 *       Closed: (_, ctx) =>
 *         Effect.flatMap(SqlClient.SqlClient, (sql) =>
 *           sql`delete from ${sql(ctx.tables.owners!)} where account = ${ctx.recorded.stream}`
 *         )
 *     })
 *   ]
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <const S extends ReadonlyArray<Source<unknown, unknown>>>(options: {
  readonly name: string
  readonly version: number
  readonly sources: S
  readonly tables?: Readonly<Record<string, TableDefinition>> | Tables<string> | undefined
}): Projection<SourceError<S[number]>, SourceServices<S[number]>> => ({
  name: options.name,
  version: options.version,
  // Each source's error and services are among the union's: what the type of `make` says.
  sources: options.sources as unknown as ReadonlyArray<Source<SourceError<S[number]>, SourceServices<S[number]>>>,
  categories: [...new Set(options.sources.map((source) => source.category))],
  eventTypes: [...new Set(options.sources.flatMap((source) => source.eventTypes))],
  tables: definitionsOf(options.tables)
})

/**
 * The projection cannot run as declared; `reason` says why. Refused before any I/O.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidProjection extends Schema.TaggedError<InvalidProjection>("@evently/store/InvalidProjection")(
  "InvalidProjection",
  { projection: Schema.String, reason: Schema.String }
) {
  override get message(): string {
    return `Projection '${this.projection}' cannot run: ${this.reason}`
  }
}

const namePattern = /^[a-z][a-z0-9_]*$/

/**
 * The longest projection or table name: room is left for the version suffix of a physical table within Postgres's
 * 63-byte identifiers.
 *
 * @since 0.1.0
 * @category validation
 */
export const maxNameLength = 48

const identifierProblem = (label: string, name: unknown): string | undefined =>
  typeof name !== "string" || !namePattern.test(name) || name.length > maxNameLength
    ? `${label} ${JSON.stringify(name)} must be 1 to ${maxNameLength} lower-case letters, digits and '_', starting with a letter`
    : undefined

// A physical table is `<table>_v<version>` or `<table>_v<version>b<build>`: a declared name ending so could be another
// table's physical name (`items` and `items_v1`), and the switch would then drop a table as if it were a view.
const physicalSuffix = /_v\d+(b\d+)?$/

const tableProblem = (table: string, definition: unknown): string | undefined =>
  identifierProblem("the table name", table) ??
  (physicalSuffix.test(table)
    ? `the table name ${JSON.stringify(table)} must not end like a build's physical table ('_v<version>' or '_v<version>b<build>')`
    : undefined) ??
  // pg_catalog comes first in every search_path: a view `pg_class` would never be read, and dropping it at the switch
  // would reach the catalog's.
  (table.startsWith("pg_")
    ? `the table name ${JSON.stringify(table)} must not start with 'pg_' (Postgres's own)`
    : undefined) ??
  (typeof definition === "function"
    ? undefined
    : `the table '${table}' needs a definition (a function that creates it)`)

const sourcesProblem = (sources: ReadonlyArray<Source<unknown, unknown>>): string | undefined => {
  if (sources.length === 0) return "it has no source"
  const seen = new Set<string>()
  for (const source of sources) {
    const category = StreamName.categoryProblem(source.category)
    if (category !== undefined) return `the category ${JSON.stringify(source.category)}: ${category}`
    if (source.eventTypes.length === 0) return `the source of category '${source.category}' has no handler`
    for (const type of source.eventTypes) {
      const key = `${source.category}\u0000${type}`
      if (seen.has(key)) return `two sources handle '${type}' events of category '${source.category}'`
      seen.add(key)
    }
  }
  return undefined
}

/**
 * What is wrong with a projection's declaration, or `undefined` when nothing is: a name and table names that can be
 * Postgres identifiers, a whole version from 1 to 1,000,000, table names that do not end like a physical table
 * (`_v<N>`, `_v<N>b<M>`) nor start with `pg_`, each with a definition, at least one source, each with a valid category and at least one
 * handler, no event type of a category handled twice.
 *
 * @since 0.1.0
 * @category validation
 */
export const problem = (projection: Projection<unknown, unknown>): string | undefined => {
  const version = projection.version
  return (
    identifierProblem("the name", projection.name) ??
    (Number.isSafeInteger(version) && version >= 1 && version <= 1_000_000
      ? undefined
      : `the version must be a whole number from 1 to 1000000, not ${version}`) ??
    Object.entries(projection.tables)
      .map(([table, definition]) => tableProblem(table, definition))
      .find((reason) => reason !== undefined) ??
    sourcesProblem(projection.sources)
  )
}

/**
 * Fails with {@link InvalidProjection} when the declaration cannot run.
 *
 * @since 0.1.0
 * @category validation
 */
export const validate = (projection: Projection<unknown, unknown>): Effect.Effect<void, InvalidProjection> => {
  const reason = problem(projection)
  return reason === undefined
    ? Effect.void
    : Effect.fail(new InvalidProjection({ projection: String(projection.name), reason }))
}

/**
 * The name of the subscription that runs a projection's version (`projection:<name>:v<version>`), or one rebuild of
 * it (`build` 2 and up: `projection:<name>:v<version>b<build>`).
 *
 * @since 0.1.0
 * @category utils
 */
export const subscriptionName = (projection: { readonly name: string; readonly version: number }, build = 1): string =>
  `projection:${projection.name}:v${projection.version}${build === 1 ? "" : `b${build}`}`

/**
 * The subscription filter of a projection: its categories and event types.
 *
 * @since 0.1.0
 * @category utils
 */
export const filterOf = (
  projection: Projection<unknown, unknown>
): { readonly categories: ReadonlyArray<string>; readonly eventTypes: ReadonlyArray<string> } => ({
  categories: projection.categories,
  eventTypes: projection.eventTypes
})

/**
 * The subscription handler of a projection: it finds the source of the event's category, decodes the event with its
 * codec and runs the handler of its tag, with `replaying` from `boundary`. A decode failure fails the handling with
 * `EventDecodeError`, which the subscription's error policy treats like a handler's failure (`Skip` parks it).
 *
 * @since 0.1.0
 * @category utils
 */
export const handler = <E, R>(
  projection: Projection<E, R>,
  build: { readonly boundary: ReplayBoundary.ReplayBoundary; readonly tables: Readonly<Record<string, string>> }
): ((recorded: EventStore.RecordedEvent) => Effect.Effect<void, E | EventCodec.EventDecodeError, R>) => {
  const byCategory = new Map<string, Array<Source<E, R>>>()
  for (const source of projection.sources) {
    byCategory.set(source.category, [...(byCategory.get(source.category) ?? []), source])
  }
  return (recorded) => {
    const source = byCategory.get(recorded.category)?.find((s) => s.eventTypes.includes(recorded.type))
    if (source === undefined) return Effect.void
    return source.handle(recorded, {
      recorded,
      replaying: ReplayBoundary.isReplay(build.boundary, recorded),
      tables: build.tables
    })
  }
}

/**
 * Options of a consumer projection's `run`: those of a subscription's run but its filter (the projection's) and
 * `transactional` (a consumer is at-least-once; a table projection runs through `PgProjections`).
 *
 * @since 0.1.0
 * @category models
 */
export type RunOptions = Omit<Subscriptions.RunOptions, "categories" | "eventTypes" | "transactional">

/**
 * Runs a projection as a consumer, until interrupted or stopped: at-least-once, on any `Subscriptions` layer, under
 * the subscription {@link subscriptionName}. `replaying` is true for the events committed before this version first
 * ran (recorded by `ReplayBoundaries` once); with `ephemeral: true`, before this run started.
 *
 * @since 0.1.0
 * @category running
 */
export const run = <E, R>(
  projection: Projection<E, R>,
  options?: RunOptions
): Effect.Effect<
  never,
  InvalidProjection | Subscriptions.SubscriptionError | Subscriptions.HandlerFailed,
  R | Subscriptions.Subscriptions | ReplayBoundary.ReplayBoundaries
> =>
  Effect.gen(function* () {
    yield* validate(projection)
    const subscriptions = yield* Subscriptions.Subscriptions
    const boundaries = yield* ReplayBoundary.ReplayBoundaries
    const name = subscriptionName(projection)
    const boundary = options?.ephemeral === true ? yield* boundaries.now : yield* boundaries.recorded(name)
    return yield* subscriptions.run(name, handler(projection, { boundary, tables: {} }), {
      ...options,
      ...filterOf(projection)
    })
  })

/**
 * Waits until a consumer projection has handled every event committed before the call (see
 * `Subscriptions.waitUntilCaughtUp`).
 *
 * @since 0.1.0
 * @category running
 */
export const waitUntilCaughtUp = (
  projection: { readonly name: string; readonly version: number },
  options?: { readonly timeout?: Duration.Input | undefined }
): Effect.Effect<void, Subscriptions.SubscriptionError | Subscriptions.CaughtUpTimeout, Subscriptions.Subscriptions> =>
  Effect.flatMap(Subscriptions.Subscriptions, (subscriptions) =>
    subscriptions.waitUntilCaughtUp(subscriptionName(projection), options)
  )

/**
 * A consumer projection's subscription status (see `Subscriptions.status`).
 *
 * @since 0.1.0
 * @category running
 */
export const status = (projection: {
  readonly name: string
  readonly version: number
}): Effect.Effect<Subscriptions.Status, Subscriptions.SubscriptionError, Subscriptions.Subscriptions> =>
  Effect.flatMap(Subscriptions.Subscriptions, (subscriptions) => subscriptions.status(subscriptionName(projection)))

/**
 * The lifecycle of a consumer projection's partitions run in this process (see `Subscriptions.lifecycle`): the
 * current phase of each, then every change.
 *
 * @since 0.1.0
 * @category running
 */
export const lifecycle = (projection: {
  readonly name: string
  readonly version: number
}): Stream.Stream<
  SubscriptionLifecycle.LifecycleEvent,
  Subscriptions.InvalidSubscription,
  Subscriptions.Subscriptions
> =>
  Stream.unwrap(
    Effect.map(Subscriptions.Subscriptions, (subscriptions) => subscriptions.lifecycle(subscriptionName(projection)))
  )
