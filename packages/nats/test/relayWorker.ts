/**
 * A relay run as a child process by NatsRelayFaults.test.ts. The database comes from `EVENTLY_WORKER_DATABASE` (the
 * server from `DATABASE_URL` / `PG*`), the broker from `NATS_URL`; `RELAY_NAME`, `RELAY_STREAM`, `RELAY_PREFIX` and
 * `RELAY_CATEGORY` say what to relay where. With `RELAY_BLOCK_AT=n` the process freezes (its whole thread, as a
 * hung process would) when it is about to publish the event at stream version n, after printing `mid-batch`: with
 * `maxInFlight: 1` every earlier event of the batch is acked by then, and none of the batch is committed. (The subject
 * function runs twice per event: when the batch is checked, then when it is published; the second call freezes.)
 */
import { NatsClient, NatsRelay, Subjects } from "@evently/nats"
import { PgConfig, PgSubscriptions } from "@evently/postgres"
import { PgClient } from "@effect/sql-pg"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

const env = (name: string) => {
  const value = process.env[name]
  if (value === undefined) throw new Error(`relayWorker needs ${name}`)
  return value
}
const prefix = env("RELAY_PREFIX")
const blockAt = process.env["RELAY_BLOCK_AT"] === undefined ? undefined : Number(process.env["RELAY_BLOCK_AT"])
const calls = new Map<string, number>()
const defaultSubject = Subjects.byCategoryAndType(prefix)

const subject: Subjects.SubjectOf = (event) => {
  if (event.streamVersion === blockAt) {
    const seen = (calls.get(event.eventId) ?? 0) + 1
    calls.set(event.eventId, seen)
    if (seen === 2) {
      process.stdout.write("mid-batch\n")
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120_000)
    }
  }
  return defaultSubject(event)
}

const Database = Layer.unwrap(
  Effect.map(Effect.orDie(PgConfig.url), (url) =>
    PgClient.layer({ url, database: env("EVENTLY_WORKER_DATABASE"), maxConnections: 4 })
  )
)

Effect.runFork(
  Effect.andThen(
    Console.log(`ready ${process.pid}`),
    NatsRelay.run({
      name: env("RELAY_NAME"),
      stream: { name: env("RELAY_STREAM") },
      prefix,
      subject,
      categories: [env("RELAY_CATEGORY")],
      batchSize: 20,
      maxInFlight: 1,
      pollInterval: "100 millis"
    })
  ).pipe(
    Effect.provide(
      Layer.mergeAll(
        PgSubscriptions.layer({ lockRetryInterval: "100 millis" }).pipe(Layer.provide(Layer.orDie(Database))),
        Layer.orDie(NatsClient.layer({ servers: env("NATS_URL") }))
      )
    ),
    Effect.tapCause(Effect.logError)
  )
)
