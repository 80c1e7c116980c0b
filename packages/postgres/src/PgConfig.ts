/**
 * Where the Postgres server is: `DATABASE_URL`, or the standard `PG*` variables, read through `Config`.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"

/**
 * The connection string used when neither `DATABASE_URL` nor any `PG*` variable is set.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultUrl = "postgres://postgres@127.0.0.1:5432/test"

const pgVariables = Config.all({
  host: Config.String("PGHOST").pipe(Config.withDefault("127.0.0.1")),
  port: Config.Port("PGPORT").pipe(Config.withDefault(5432)),
  user: Config.String("PGUSER").pipe(Config.withDefault("postgres")),
  password: Config.option(Config.Redacted("PGPASSWORD")),
  database: Config.String("PGDATABASE").pipe(Config.withDefault("test"))
})

/**
 * The server's connection string: `DATABASE_URL` when it is set, otherwise one built from `PGHOST`, `PGPORT`,
 * `PGUSER`, `PGPASSWORD` and `PGDATABASE`, each defaulting to {@link defaultUrl}'s part.
 *
 * @since 0.1.0
 * @category config
 */
export const url: Config.Config<Redacted.Redacted<string>> = Config.Redacted("DATABASE_URL").pipe(
  Config.orElse(() =>
    pgVariables.pipe(
      Config.map(({ database, host, password, port, user }) => {
        const secret = Option.match(password, {
          onNone: () => "",
          onSome: (value) => `:${encodeURIComponent(Redacted.value(value))}`
        })
        const hostPart = host.includes(":") ? `[${host}]` : host
        return Redacted.make(
          `postgres://${encodeURIComponent(user)}${secret}@${hostPart}:${port}/${encodeURIComponent(database)}`
        )
      })
    )
  )
)

/**
 * The connection string with any password masked, for messages and logs.
 *
 * @since 0.1.0
 * @category utils
 */
export const describe = (connection: Redacted.Redacted<string>): string =>
  Redacted.value(connection).replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@")
