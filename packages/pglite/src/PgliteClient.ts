/**
 * An `@effect/sql-pg` client (so also an `effect/sql` `SqlClient`) on an in-process PGlite: the embedded database,
 * in memory or in a data directory, with no server and no socket.
 *
 * How it works, and why: `@effect/sql-pg`'s single-connection client (`PgClient.makeClient`) runs over a `Duplex`
 * that hands its wire-protocol bytes straight to PGlite's `execProtocolRawStream`. Every statement, transaction,
 * savepoint, JSON value and type parser is @effect/sql-pg's own, so the Postgres adapter sees the same client it
 * sees on a real server. PGlite has one session, and so does this client: a transaction pins that one connection,
 * and every other fiber's statement, transactional or not, waits for the pin to be released. Transactions are
 * serialized, never interleaved, and a plain query can never run inside another fiber's transaction.
 *
 * `sql.reserve` is the exception: it gives the one session without pinning it. On a server a reserved connection
 * is a session of its own, held for long stretches (a subscription worker holds one for its advisory lock for as
 * long as it runs); on PGlite there is no other session to give, and pinning the only one for that long would stop
 * every other fiber (the worker's own LISTEN included). Each statement sent through the reserved connection waits
 * like any plain statement and runs alone, never inside another fiber's transaction; session state (advisory locks,
 * `SET`, `LISTEN`) is the one session's, shared by every fiber as it always is here. Group statements that must
 * run together in `sql.withTransaction`, not in a `BEGIN` sent through a reserved connection. (The alternatives were weaker: a `SqlClient` written on PGlite's `query`/`transaction` API would
 * re-implement what @effect/sql-pg already gets right, and lose `PgClient`'s `json`/`listen`; serving PGlite on
 * `@electric-sql/pglite-socket` puts TCP in between and its `LISTEN` did not deliver.)
 *
 * LISTEN/NOTIFY works: `listen(channel)` runs `LISTEN` through the shared session and the notifications PGlite
 * emits at commit are picked out of its output and offered to the listeners' queues, without holding the
 * connection (a real-Postgres `PgClient` holds one connection per listener; here that would block everything).
 * A notification sent in a transaction that rolls back is never delivered.
 *
 * Costs of one session: a long transaction or an open `sql.stream` stops every other fiber until it ends, and a
 * fiber that waits inside one of them for another fiber's query deadlocks. Session-level state (advisory locks,
 * `SET`) is shared by every fiber: a session advisory lock taken by one fiber is held, re-entrantly, by all.
 *
 * @since 0.1.0
 */
import { PGlite } from "@electric-sql/pglite"
import { PgClient } from "@effect/sql-pg"
import type { PgConnection } from "@effect/sql-pg"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type * as Reactivity from "effect/reactivity/Reactivity"
import type * as Scope from "effect/Scope"
import type * as SqlClient from "effect/sql/SqlClient"
import type * as SqlConnection from "effect/sql/SqlConnection"
import * as Stream from "effect/Stream"
import { ConnectionError, SqlError, UnknownError } from "effect/sql/SqlError"
import * as V8 from "node:v8"
import * as Prepared from "./internal/prepared.ts"
import * as Wire from "./internal/wire.ts"

/**
 * Where the embedded database keeps its files: `dataDir` is a directory on disk (created when missing, reopened
 * when it already holds a database); without it the database lives in memory and is gone when the scope closes.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly dataDir?: string | undefined
  /**
   * In memory only: where the prepared data directory is kept (see {@link open}). Default: `EVENTLY_PGLITE_CACHE`
   * when set, `evently-pglite` in the OS's temp directory otherwise.
   */
  readonly cacheDir?: string | undefined
}

/**
 * How {@link open} started a database: `cache` from the prepared data directory it found, `initdb` after running
 * initdb (in memory: the first start in this setup, which also prepares the data directory for the next ones),
 * `dataDir` on the files in `options.dataDir`.
 *
 * @since 0.1.0
 * @category models
 */
export type Source = "cache" | "initdb" | "dataDir"

/**
 * A started PGlite and how it was started.
 *
 * @since 0.1.0
 * @category models
 */
export interface Opened {
  readonly db: PGlite
  readonly source: Source
}

const openError = (cause: unknown, message: string) =>
  new SqlError({ reason: new ConnectionError({ cause, message, operation: "connect" }) })

const startFailed = (cause: unknown) => openError(cause, "PgliteClient: could not start the embedded database (memory)")

/**
 * A fresh, empty in-memory database, started from the prepared data directory: read from the cache when it is
 * there, made (initdb in a throwaway instance) and written to the cache when it is not. A cached data directory that
 * will not start is removed and made again; a cache that cannot be written only costs the next start its speed.
 */
const openInMemory = (cacheDir: string): Effect.Effect<Opened, SqlError> =>
  Effect.gen(function* () {
    const path = Prepared.bundlePath(cacheDir)
    const cached = yield* Effect.sync(() => Prepared.read(path))
    if (cached !== undefined) {
      const started = yield* Effect.tryPromise({ try: () => Prepared.start(cached), catch: startFailed }).pipe(
        Effect.tapError((error) =>
          Effect.andThen(
            Effect.logWarning(
              `PgliteClient: the prepared data directory ${path} did not start; making it again`,
              error
            ),
            Effect.sync(() => Prepared.remove(path))
          )
        ),
        Effect.option
      )
      if (Option.isSome(started)) return { db: started.value, source: "cache" } as const
    }
    const bundle = yield* Effect.tryPromise({ try: () => Prepared.prepare(), catch: startFailed })
    yield* Effect.try({ try: () => Prepared.write(path, bundle), catch: (cause) => cause }).pipe(
      Effect.catch((cause) =>
        Effect.logDebug(`PgliteClient: could not keep the prepared data directory in ${path}`, cause)
      )
    )
    const db = yield* Effect.tryPromise({ try: () => Prepared.start(bundle), catch: startFailed })
    return { db, source: "initdb" } as const
  })

/**
 * Starts a PGlite, closed with the scope. With `options.dataDir` it opens (or creates) the database in that
 * directory. Without it, it starts a fresh, empty database in memory from a prepared data directory: the first
 * start in a setup runs initdb once and keeps the result in `options.cacheDir`, and every later start, in any
 * process, begins from a copy of it instead of running initdb again (about a second instead of several). The
 * in-memory instance also uses a 16 MB buffer pool instead of PGlite's 128 MB, which Postgres would zero at
 * every start.
 *
 * @since 0.1.0
 * @category constructors
 */
export const open = (options: Options = {}): Effect.Effect<Opened, SqlError, Scope.Scope> => {
  const dataDir = options.dataDir
  const opening: Effect.Effect<Opened, SqlError> =
    dataDir === undefined
      ? openInMemory(options.cacheDir ?? Prepared.defaultCacheDir())
      : Effect.tryPromise({
          try: () => PGlite.create({ dataDir }).then((db) => ({ db, source: "dataDir" }) as const),
          catch: (cause) => openError(cause, `PgliteClient: could not open the embedded database (${dataDir})`)
        })
  return Effect.acquireRelease(opening, ({ db }) => Effect.ignore(Effect.tryPromise(() => db.close())))
}

/**
 * Starts a PGlite (closed with the scope, see {@link open}) and returns a `PgClient` on it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<PgClient.PgClient, SqlError, Scope.Scope | Reactivity.Reactivity> =>
  Effect.flatMap(open(options), ({ db }) => fromPglite(db))

/** Applies a reserved statement's row transform, when it has one. */
const transform = <A>(
  rows: Effect.Effect<ReadonlyArray<A>, SqlError>,
  transformRows: (<B extends object>(rows: ReadonlyArray<B>) => ReadonlyArray<B>) | undefined
) => (transformRows === undefined ? rows : Effect.map(rows, (all) => transformRows(all as never) as never))

/**
 * A `PgClient` on a PGlite instance the caller owns (and closes). Only one client may use an instance at a time,
 * and nothing else may send it statements while the client is open: they would run inside its transactions.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromPglite = (
  db: PGlite
): Effect.Effect<PgClient.PgClient, SqlError, Scope.Scope | Reactivity.Reactivity> =>
  Effect.gen(function* () {
    const listeners = new Map<string, Set<Queue.Queue<PgConnection.Notification, SqlError>>>()
    const dispatch = (notification: Wire.WireNotification): void => {
      const queues = listeners.get(notification.channel)
      if (queues === undefined) return
      for (const queue of queues) Queue.offerUnsafe(queue, notification)
    }

    const client = yield* PgClient.makeClient({
      stream: () => Wire.makeDuplex(db, dispatch),
      ssl: false,
      username: "postgres",
      database: "postgres",
      host: "pglite",
      applicationName: "@evently/pglite"
    })

    const listen = (
      channel: string
    ): Effect.Effect<Queue.Dequeue<PgConnection.Notification, SqlError>, SqlError, Scope.Scope> =>
      Effect.gen(function* () {
        if (new TextEncoder().encode(channel).byteLength > 63) {
          const message = "PostgreSQL channel names must not exceed 63 UTF-8 bytes"
          return yield* new SqlError({ reason: new UnknownError({ cause: new Error(message), message }) })
        }
        const queue = yield* Queue.unbounded<PgConnection.Notification, SqlError>()
        const unregister = Effect.suspend(() => {
          const queues = listeners.get(channel)
          queues?.delete(queue)
          const last = queues !== undefined && queues.size === 0
          if (last) listeners.delete(channel)
          return Effect.andThen(
            last ? Effect.ignore(client`UNLISTEN ${client(channel)}`) : Effect.void,
            Queue.shutdown(queue)
          )
        })
        yield* Effect.acquireRelease(
          Effect.sync(() => {
            const queues = listeners.get(channel) ?? new Set()
            queues.add(queue)
            listeners.set(channel, queues)
          }),
          () => unregister
        )
        yield* client`LISTEN ${client(channel)}`
        return queue
      })

    // The one session, not pinned: every statement goes the way a plain statement goes (see the module's notes).
    // The client has no row transforms, so `stream`/`unprepared`/`values` return rows as the server sent them.
    const session: SqlConnection.Connection = {
      execute: (text, params, transformRows) => transform(client.unsafe(text, params).withoutTransform, transformRows),
      executeRaw: (text, params) => client.unsafe(text, params).raw,
      executeStream: (text, params, transformRows) =>
        transformRows === undefined
          ? client.unsafe(text, params).stream
          : Stream.mapArray(client.unsafe(text, params).stream, (rows) => transformRows(rows as never) as never),
      executeValues: (text, params) => client.unsafe(text, params).values,
      executeValuesUnprepared: (text, params) => client.unsafe(text, params).valuesUnprepared,
      executeUnprepared: (text, params, transformRows) =>
        transform(client.unsafe(text, params).unprepared, transformRows)
    }
    const reserve: Effect.Effect<SqlConnection.Connection, SqlError, Scope.Scope> = Effect.succeed(session)

    return Object.assign(client, { listen, reserve })
  })

/**
 * Raises V8's WebAssembly tier-up budget for the whole process (`--wasm-tiering-budget`, default 2,000,000,000), so
 * that only the busiest functions of the embedded Postgres are recompiled by V8's optimizing compiler. On V8's
 * default budget, starting PGlite and running a few statements sends Postgres's largest function there: measured
 * here, 2 to 8 s of CPU on a background thread and 600 MB of memory, which competes with the start on a busy machine
 * and which a short-lived process (an example, a command line) waits for at exit. Measured on a loaded 2-core
 * machine, open + migrate took a median 2.0 s with it and 3.2 s without, and about half the CPU.
 *
 * A process-wide V8 setting, and a trade: code that stays busy for long is optimized later. So it is the app's
 * choice, made before the first PGlite starts; nothing in evently sets it by itself.
 *
 * @since 0.1.0
 * @category utils
 */
export const raiseWasmTieringBudget = (budget = 2_000_000_000): Effect.Effect<void> =>
  Effect.sync(() => V8.setFlagsFromString(`--wasm-tiering-budget=${Math.max(1, Math.floor(budget))}`))

/**
 * `PgClient` and `SqlClient` on an embedded PGlite, in memory or in `options.dataDir`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, SqlError> =>
  PgClient.layerFrom(make(options))
