/**
 * What the NATS tests share: the broker (NATS_URL, default nats://127.0.0.1:4222; a test fails saying what to start
 * when none answers), a nats-server of a test's own (its own port and directory, killed and restarted by fault
 * tests), a migrated database of the test's own with the Postgres store and subscriptions, and reads of what a
 * JetStream stream holds.
 */
import { NatsClient } from "@evently/nats"
import { PgEventStore, PgSchema, PgSubscriptions } from "@evently/postgres"
import { TestDatabase } from "@evently/testing"
import type { StoredMsg } from "@nats-io/jetstream"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { spawn, type ChildProcess } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

export const natsUrl = process.env["NATS_URL"] ?? "nats://127.0.0.1:4222"

/** The client of the shared broker: a test fails with NatsUnreachable ("start one (nats-server -js) or point NATS_URL at one") when it does not answer. */
export const layerNats = Layer.orDie(NatsClient.layer({ servers: natsUrl, reconnectTimeWait: "100 millis" }))

/** A database of its own, migrated, with the Postgres event store and subscriptions on it. */
export const layerStore = Layer.mergeAll(
  PgEventStore.layer(),
  PgSubscriptions.layer({ lockRetryInterval: "100 millis", reconnectDelay: "100 millis" })
).pipe(
  Layer.provideMerge(
    PgSchema.layerMigrate.pipe(Layer.orDie, Layer.provideMerge(TestDatabase.layer({ maxConnections: 20 })))
  )
)

/** A name no other test run uses (JetStream streams and subject prefixes live on the shared broker). */
export const unique = (label: string) => `${label}_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`

/** A TCP port nothing listens on (at the time of the call). */
export const freePort = Effect.callback<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

const natsServerBinary = process.env["NATS_SERVER"] ?? "nats-server"

/** A nats-server with JetStream of the test's own: `kill` (SIGKILL) and `start` again on the same port and directory. */
export interface OwnServer {
  readonly url: string
  readonly start: Effect.Effect<void>
  readonly kill: Effect.Effect<void>
}

const launch = (port: number, dir: string) =>
  Effect.callback<ChildProcess>((resume) => {
    const child = spawn(natsServerBinary, ["-js", "-sd", dir, "-a", "127.0.0.1", "-p", String(port)], {
      stdio: ["ignore", "ignore", "pipe"]
    })
    let log = ""
    child.stderr!.on("data", (chunk: Buffer) => {
      log += chunk.toString()
      if (log.includes("Server is ready")) resume(Effect.succeed(child))
    })
    child.on("error", (error) =>
      resume(
        Effect.die(
          new Error(`cannot start ${natsServerBinary} (install nats-server, or set NATS_SERVER): ${error.message}`)
        )
      )
    )
    child.on("exit", (code) => resume(Effect.die(new Error(`nats-server exited with ${code}:\n${log}`))))
  })

/** Starts a nats-server of the test's own, stopped (and its directory removed) when the scope closes. */
export const ownServer = Effect.gen(function* () {
  const port = yield* freePort
  const dir = mkdtempSync(join(tmpdir(), "evently-nats-"))
  let child: ChildProcess | undefined
  const kill = Effect.callback<void>((resume) => {
    const running = child
    child = undefined
    if (running === undefined || running.exitCode !== null) return resume(Effect.void)
    running.removeAllListeners("exit")
    running.once("exit", () => resume(Effect.void))
    running.kill("SIGKILL")
  })
  const start = Effect.map(launch(port, dir), (started) => {
    child = started
  })
  yield* Effect.acquireRelease(start, () =>
    Effect.andThen(
      kill,
      Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
    )
  )
  return { url: `nats://127.0.0.1:${port}`, start, kill } satisfies OwnServer
})

/** Every message a JetStream stream holds, in stream order. */
export const storedMessages = (stream: string) =>
  Effect.gen(function* () {
    const { manager } = yield* NatsClient.NatsClient
    const info = yield* Effect.promise(() => manager.streams.info(stream))
    const messages: Array<StoredMsg> = []
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const message = yield* Effect.promise(() => manager.streams.getMessage(stream, { seq }))
      if (message !== null) messages.push(message)
    }
    return messages
  })

/** Waits until a JetStream stream holds at least `count` messages. */
export const waitForMessages = (stream: string, count: number) =>
  Effect.gen(function* () {
    const { manager } = yield* NatsClient.NatsClient
    while (true) {
      const info = yield* Effect.promise(() => manager.streams.info(stream).catch(() => undefined))
      if (info !== undefined && info.state.messages >= count) return info.state.messages
      yield* Effect.sleep("20 millis")
    }
  }).pipe(Effect.timeout("20 seconds"), Effect.orDie)

/** The first `count` messages of a JetStream stream, through an ordered consumer (fast for large streams). */
export const readMessages = (stream: string, count: number) =>
  Stream.unwrap(
    Effect.gen(function* () {
      const { jetstream } = yield* NatsClient.NatsClient
      const consumer = yield* Effect.promise(() => jetstream.consumers.get(stream))
      const messages = yield* Effect.acquireRelease(
        Effect.promise(() => consumer.consume({ max_messages: 1000 })),
        (iterator) => Effect.promise(() => iterator.close().then(() => undefined))
      )
      return Stream.fromAsyncIterable(messages, (error) => error)
    })
  ).pipe(Stream.take(count), Stream.runCollect, Effect.orDie)

/** Deletes the JetStream stream when the scope closes (test streams do not pile up on the shared broker). */
export const removedAfter = (stream: string) =>
  Effect.flatMap(NatsClient.NatsClient, ({ manager }) =>
    Effect.addFinalizer(() => Effect.promise(() => manager.streams.delete(stream).catch(() => false)))
  )
