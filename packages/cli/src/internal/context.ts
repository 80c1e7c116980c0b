/**
 * What every command shares: the global flags (`--url`, `--config`, `--json`), the database connection they lead
 * to, and the application's config module.
 */
import { PgClient } from "@effect/sql-pg"
import { PgConfig, PgSchema } from "@evently/postgres"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import { Flag, GlobalFlag } from "effect/cli"
import * as SqlError from "effect/sql/SqlError"
import * as EventlyConfig from "../EventlyConfig.ts"
import * as ExitCode from "../ExitCode.ts"

/** `--url`: the connection string, instead of `DATABASE_URL` / `PG*`. */
export const Url = GlobalFlag.Setting("url")({
  flag: Flag.Redacted("url").pipe(
    Flag.withDescription("Postgres connection string (default: DATABASE_URL, else the PG* variables)"),
    Flag.optional
  )
})

/** `--config`: the config module. */
export const ConfigPath = GlobalFlag.Setting("config")({
  flag: Flag.String("config").pipe(
    Flag.withDescription(
      "Config module with the application's codecs, machines, projections (default: evently.config.ts)"
    ),
    Flag.optional
  )
})

/** `--json`: machine-readable output. */
export const Json = GlobalFlag.Setting("json")({
  flag: Flag.Boolean("json").pipe(Flag.withDescription("Print JSON instead of tables"), Flag.withDefault(false))
})

/** The application's config module, loaded once per run. */
export const config = Effect.gen(function* () {
  const path = yield* ConfigPath
  return yield* EventlyConfig.load(Option.getOrUndefined(path)).pipe(
    Effect.mapError((error) => ExitCode.fail(ExitCode.Unavailable, error.message))
  )
})

const connectionUrl = Effect.gen(function* () {
  const flag = yield* Url
  if (Option.isSome(flag)) return flag.value
  return yield* PgConfig.url.pipe(
    Effect.mapError((error) => ExitCode.fail(ExitCode.Unavailable, `Invalid connection settings: ${error.message}`))
  )
})

const causeOf = (error: SqlError.SqlError): { readonly message?: unknown; readonly code?: unknown } => {
  const cause = (error.reason as { readonly cause?: unknown }).cause
  return typeof cause === "object" && cause !== null ? cause : {}
}

// A database error as the exit code and message the command ends with: no server, no such database or a refused
// login is `Unavailable`; a missing table says to migrate.
const fromSqlError = (error: SqlError.SqlError, url: Redacted.Redacted<string>): ExitCode.CommandFailed => {
  const cause = causeOf(error)
  const code = typeof cause.code === "string" ? cause.code : ""
  const detail = typeof cause.message === "string" ? `${error.reason.message}: ${cause.message}` : error.message
  if (error.reason._tag === "ConnectionError" || /^(08|28|3D)/.test(code)) {
    return ExitCode.fail(ExitCode.Unavailable, `No database at ${PgConfig.describe(url)}: ${detail}`)
  }
  if (code === "42P01") {
    return ExitCode.fail(ExitCode.Failed, `${detail} (are evently's tables there? evently migrate creates them)`)
  }
  return ExitCode.fail(ExitCode.Failed, detail)
}

/** Runs `effect` with a client on the database (and the config module's table prefix). */
export const withDatabase = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const url = yield* connectionUrl
    const { tablePrefix } = yield* config
    const database = PgClient.layer({ url, applicationName: "evently-cli", maxConnections: 4 })
    const tables = tablePrefix === undefined ? Layer.empty : PgSchema.layerTables(tablePrefix)
    return yield* effect.pipe(
      Effect.provide(Layer.merge(database, tables)),
      Effect.mapError((error) => (SqlError.isSqlError(error) ? fromSqlError(error, url) : error))
    )
  })

const maxPosition = 9_223_372_036_854_775_807n

/** Parses a position given on the command line: an integer from 0 to 2^63 - 1 (a Postgres `bigint`). */
export const parsePosition = (text: string): Effect.Effect<bigint, ExitCode.CommandFailed> =>
  /^\d{1,19}$/.test(text) && BigInt(text) <= maxPosition
    ? Effect.succeed(BigInt(text))
    : Effect.fail(ExitCode.fail(ExitCode.Usage, `'${text}' is not a position (an integer from 0 to ${maxPosition})`))

/**
 * The entry `key` of a config module's record (codecs, machines, projections), only if it is the record's own: a
 * name such as `constructor` or `toString` is not one of them.
 */
export const own = <A>(record: { readonly [key: string]: A }, key: string): A | undefined =>
  Object.hasOwn(record, key) ? record[key] : undefined
