/**
 * A database of its own for each test file, on the Postgres server the environment names, dropped afterwards.
 *
 * @since 0.1.0
 */
import { PgClient } from "@effect/sql-pg"
import { PgConfig } from "@evently/postgres"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Reactivity from "effect/reactivity/Reactivity"
import type * as SqlClient from "effect/sql/SqlClient"

const unreachable = (url: string, cause: unknown) =>
  new Error(
    `No PostgreSQL server answered at ${url}. The Postgres tests need one: set DATABASE_URL ` +
      `(or PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE) to a server where this user may CREATE DATABASE.`,
    { cause }
  )

/**
 * Connects to the server from `DATABASE_URL` / `PG*` (default `postgres://postgres@127.0.0.1:5432/test`), creates a
 * fresh database named `evently_test_<random>`, provides a client on it, and drops it when the layer is released,
 * so test files running in parallel never see each other's rows, locks or notifications. When no server answers,
 * building the layer dies at once with a message naming the variables to set: the tests fail, they are never skipped.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: {
    readonly maxConnections?: number
    /**
     * The client's name transforms and codecs, to test code that must work with an app's client configured with
     * them.
     */
    readonly client?: Pick<
      PgClient.PgClientConfig,
      "transformQueryNames" | "transformResultNames" | "transformJson" | "types"
    >
  } = {}
): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient> =>
  Layer.unwrap(
    Effect.gen(function* () {
      const url = yield* Effect.orDie(PgConfig.url)
      const admin = yield* PgClient.make({ url, maxConnections: 1 }).pipe(
        Effect.flatMap((client) => Effect.as(client`select 1`, client)),
        Effect.timeout("10 seconds"),
        Effect.catchCause((cause) => Effect.die(unreachable(PgConfig.describe(url), cause))),
        Effect.provide(Reactivity.layer)
      )
      const database = `evently_test_${crypto.randomUUID().replaceAll("-", "")}`
      yield* Effect.orDie(admin`create database ${admin(database)}`)
      yield* Effect.addFinalizer(() => Effect.ignore(admin`drop database if exists ${admin(database)} with (force)`))
      return PgClient.layer({ ...options.client, url, database, maxConnections: options.maxConnections ?? 8 })
    })
  ).pipe(Layer.orDie)
