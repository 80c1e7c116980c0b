/**
 * The app-level database choice: a real PostgreSQL server when the environment names one, the embedded PGlite
 * otherwise, so a fresh clone runs with nothing installed and production runs the same adapters on a server.
 *
 * @since 0.1.0
 */
import { PgClient } from "@effect/sql-pg"
import { PgConfig } from "@evently/postgres"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import * as PgliteClient from "./PgliteClient.ts"

/**
 * Which database an app runs on: `Postgres` at a connection string, or `Embedded` (PGlite) in memory or in a
 * data directory.
 *
 * @since 0.1.0
 * @category models
 */
export type Choice =
  | { readonly _tag: "Postgres"; readonly url: Redacted.Redacted<string> }
  | { readonly _tag: "Embedded"; readonly dataDir: Option.Option<string> }

/**
 * The variables that, when any is set, mean "a PostgreSQL server is configured".
 *
 * @since 0.1.0
 * @category constants
 */
export const serverVariables = ["DATABASE_URL", "PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE"] as const

/**
 * Reads the choice from the environment: `DATABASE_URL` or any `PG*` variable set → `Postgres` (the URL from
 * `PgConfig.url`); none set → `Embedded`, in `EVENTLY_DATA_DIR` when that is set, in memory otherwise.
 *
 * @since 0.1.0
 * @category config
 */
export const choice: Effect.Effect<Choice, Config.ConfigError> = Effect.gen(function* () {
  for (const name of serverVariables) {
    const value = yield* Config.option(Config.String(name))
    if (Option.isSome(value)) {
      const url = yield* PgConfig.url
      return { _tag: "Postgres", url } as const
    }
  }
  const dataDir = yield* Config.option(Config.NonEmptyString("EVENTLY_DATA_DIR"))
  return { _tag: "Embedded", dataDir } as const
})

/**
 * One line saying which database a {@link Choice} is, with any password masked.
 *
 * @since 0.1.0
 * @category utils
 */
export const describe = (chosen: Choice): string =>
  chosen._tag === "Postgres"
    ? `PostgreSQL at ${PgConfig.describe(chosen.url)}`
    : Option.match(chosen.dataDir, {
        onNone: () =>
          "the embedded database (PGlite) in memory; set EVENTLY_DATA_DIR to keep data, DATABASE_URL for a server",
        onSome: (dir) => `the embedded database (PGlite) in ${dir} (EVENTLY_DATA_DIR)`
      })

/**
 * The client for a {@link Choice}: `PgClient.layer` for a server, {@link PgliteClient.layer} for the embedded
 * database. Both provide `PgClient` (with `listen`/`notify`) and `SqlClient`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerChoice = (chosen: Choice): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, SqlError> =>
  chosen._tag === "Postgres"
    ? PgClient.layer({ url: chosen.url })
    : PgliteClient.layer({ dataDir: Option.getOrUndefined(chosen.dataDir) })

/**
 * The app's database, chosen from the environment by {@link choice} and logged: PostgreSQL when `DATABASE_URL`
 * (or any `PG*` variable) is set, the embedded PGlite otherwise.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, Config.ConfigError | SqlError> = Layer.unwrap(
  Effect.map(
    Effect.tap(choice, (chosen) => Effect.logInfo(`evently: using ${describe(chosen)}`)),
    layerChoice
  )
)
