/**
 * A cluster runner run as a child process by the bench's cluster workloads (`ClusterWorkloads.ts`): it joins the
 * cluster `CLUSTER_PREFIX` on 127.0.0.1:`RUNNER_PORT` and handles the bench counter's commands on the bench database
 * `BENCH_DATABASE` (the server from `DATABASE_URL` / `PG*`), with evently's defaults (the `evently_` tables, NOTIFY
 * on). Its connections are named `bench-runner-<port>`. It prints `ready <pid>` once it has joined the cluster, and
 * exits when its stdin closes (the bench ended or died).
 */
import { PgClient } from "@effect/sql-pg"
import { ClusterRunner, StreamEntity } from "@evently/cluster"
import { PgConfig, PgEventStore } from "@evently/postgres"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { counter, HotCounter } from "./HotCounter.ts"

const env = (name: string): string => {
  const value = process.env[name]
  if (value === undefined) throw new Error(`the bench's cluster runner needs ${name}`)
  return value
}

const port = Number(env("RUNNER_PORT"))

// The bench holds this process's stdin open: when the bench is gone (even SIGKILLed), so is this runner.
process.stdin.resume()
process.stdin.on("close", () => process.exit(0))

const Database = Layer.orDie(
  Layer.unwrap(
    Effect.map(Effect.orDie(PgConfig.url), (url) =>
      PgClient.layer({
        url,
        database: env("BENCH_DATABASE"),
        maxConnections: Number(process.env["RUNNER_CONNECTIONS"] ?? 16),
        applicationName: `bench-runner-${port}`
      })
    )
  )
)

const Entities = StreamEntity.layer(HotCounter, { decider: counter }).pipe(
  Layer.provide(ClusterRunner.layer({ prefix: env("CLUSTER_PREFIX"), host: "127.0.0.1", port })),
  Layer.provide(PgEventStore.layer()),
  Layer.provide(Database)
)

Effect.runFork(
  Layer.launch(
    Layer.mergeAll(Entities, Layer.effectDiscard(Effect.sync(() => process.stdout.write(`ready ${process.pid}\n`))))
  ).pipe(
    Effect.tapCause((cause) => Effect.sync(() => console.error(cause))),
    Effect.ensuring(Effect.sync(() => process.exit(1)))
  )
)
