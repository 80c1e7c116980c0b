/**
 * The cluster workloads (issue 23): the bench counter's commands through `@evently/cluster`, sent from this process
 * as a client-only member to two runner processes (`clusterRunner.ts`), against in-process command handlers in the
 * same run. The runners and the client are started once per bench run, in a cluster of their own (a unique table
 * prefix on the bench database), the first time a cluster variant is prepared; they stop when the run's scope closes,
 * on failure too.
 */
import { ClusterRunner, StreamEntity } from "@evently/cluster"
import { CommandHandler, EventCodec, EventStore } from "@evently/store"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as SqlClient from "effect/sql/SqlClient"
import { type ChildProcess, spawn } from "node:child_process"
import { createServer } from "node:net"
import { fileURLToPath } from "node:url"
import { Counted, counter, HotCounter } from "./HotCounter.ts"
import {
  eventlyStore,
  eventlyTables,
  type HotCounts,
  type HotHandler,
  hotStream,
  type Variant,
  type Workload
} from "./Workloads.ts"

/** The shards of the bench's cluster (effect/cluster's one default group), all of which the two runners must hold. */
const shards = 300

const freePort = Effect.callback<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** Resolves once the child prints a line starting with `ready`; fails with its output if it exits first. */
const ready = (child: ChildProcess) =>
  Effect.callback<void, Error>((resume) => {
    let output = ""
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString()
      if (output.split("\n").some((line) => line.startsWith("ready"))) resume(Effect.void)
    })
    child.stderr!.on("data", (chunk: Buffer) => {
      output += chunk.toString()
    })
    child.on("exit", (code) => resume(Effect.fail(new Error(`cluster runner exited (${code}):\n${output}`))))
  }).pipe(Effect.timeout("60 seconds"))

const runnerScript = fileURLToPath(new URL("./clusterRunner.ts", import.meta.url))

/** Starts one runner process of the cluster `prefix` (SIGKILLed when the scope closes) and waits until it joined. */
const runner = (database: string, prefix: string) =>
  Effect.gen(function* () {
    const port = yield* freePort
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const started = spawn(process.execPath, [runnerScript], {
          env: { ...process.env, BENCH_DATABASE: database, CLUSTER_PREFIX: prefix, RUNNER_PORT: String(port) },
          stdio: ["pipe", "pipe", "pipe"]
        })
        // Should the bench exit without closing its scope, the runner goes with it.
        const kill = () => started.kill("SIGKILL")
        process.once("exit", kill)
        return { started, kill }
      }),
      ({ kill }) => Effect.sync(kill)
    )
    yield* ready(child.started)
    return `bench-runner-${port}`
  })

/** Waits until every shard is held by one of the runners and each holds some (the first one no longer holds all). */
const balanced = (applications: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ readonly application: string; readonly locks: number }>`
      select a.application_name as application, count(*)::int as locks
      from pg_locks l join pg_stat_activity a on a.pid = l.pid
      where l.locktype = 'advisory' and l.granted and a.datname = current_database()
        and a.application_name in ${sql.in(applications)}
      group by a.application_name`
    const held = rows.reduce((sum, row) => sum + row.locks, 0)
    if (rows.length === applications.length && held === shards) return
    return yield* Effect.fail(new Error(`shards not settled: ${JSON.stringify(rows)}`))
  }).pipe(Effect.retry({ schedule: Schedule.spaced("250 millis"), times: 240 }))

let client: HotHandler | undefined

/**
 * The cluster's client, started on first use: two runner processes on the bench database, each waited for, the
 * shards settled between them, then this process joins as a client only. Everything stops when the scope closes
 * (the client leaves first, then the runners are killed).
 */
const clusterClient: Effect.Effect<HotHandler, unknown, SqlClient.SqlClient | Scope.Scope> = Effect.suspend(() =>
  client !== undefined
    ? Effect.succeed(client)
    : Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const [{ name }] = (yield* sql<{ readonly name: string }>`select current_database() as name`) as [
          { readonly name: string }
        ]
        const prefix = `bench_cluster_${process.pid}_${crypto.randomUUID().slice(0, 8)}`
        const runners = yield* Effect.all([runner(name, prefix), runner(name, prefix)], { concurrency: 2 })
        yield* balanced(runners)
        const context = yield* Layer.build(ClusterRunner.layerClientOnly({ prefix }))
        client = (yield* Effect.provideContext(StreamEntity.client(HotCounter), context)) as HotHandler
        yield* Effect.logInfo(`cluster ${prefix}: runners ${runners.join(", ")} hold ${shards} shards`)
        return client
      })
)

/** Streams of the many-streams workload: each variant run writes its own. */
const manyStreams = 1_000
let manyRun = 0

/**
 * Workload 10: every worker sends commands to one of 1,000 streams in turn (worker `w`'s `s`-th command goes to
 * stream `(s × concurrency + w) mod 1,000`), through a direct in-process `CommandHandler` (defaults) or the cluster's
 * client. Before the run, one command per stream creates them all (and warms each one's owner and state); the check:
 * the events of the run's streams are as many as the commands that succeeded.
 */
const spread = (
  variant: "direct" | Effect.Effect<HotHandler, unknown, SqlClient.SqlClient | Scope.Scope>,
  counts: HotCounts
): Variant => ({
  eventsPerOperation: 1,
  prepare: (concurrency) =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const prefix = `many-b${++manyRun}s`
      counts.conflicts = 0
      counts.successes = 0
      counts.gaveUp = 0
      const store = yield* eventlyStore({ notify: true })
      const handler: HotHandler =
        variant === "direct"
          ? yield* CommandHandler.make({ decider: counter, codec: EventCodec.make(Counted) }).pipe(
              Effect.provideService(EventStore.EventStore, store)
            )
          : yield* variant
      // Every stream exists and its handler holds its state before the run (the runners have started its entity).
      yield* Effect.forEach(
        Array.from({ length: manyStreams }, (_, i) => i),
        (i) => handler.handle(`${prefix}${i}`, -1),
        { concurrency, discard: true }
      )
      counts.successes = manyStreams
      return {
        operation: (worker, sequence) =>
          handler.handle(`${prefix}${(sequence * concurrency + worker) % manyStreams}`, worker).pipe(
            Effect.map((handled) => {
              counts.conflicts += handled.attempts - 1
              counts.successes++
              return 1
            }),
            Effect.catchIf(
              (error) => error instanceof CommandHandler.ConcurrencyRetriesExhausted,
              () =>
                Effect.sync(() => {
                  counts.gaveUp++
                  return 0
                })
            )
          ),
        check: Effect.flatMap(
          sql<{ readonly events: number }>`select count(*)::int as events from ${sql(eventlyTables.events)}
            where stream like ${`${prefix}%`}`,
          ([row]) =>
            row?.events === counts.successes
              ? Effect.succeed(
                  `${counts.successes} events in ${manyStreams} streams; ${counts.conflicts} conflicts; ` +
                    `${counts.gaveUp} gave up (warm-ups included)`
                )
              : Effect.die(new Error(`${prefix}*: ${row?.events} events, ${counts.successes} successes`))
        )
      }
    })
})

const fresh = (): HotCounts => ({ conflicts: 0, successes: 0, gaveUp: 0 })
const racing = "evently, racing (oneAtATimePerStream: false)"
const cluster = "cluster, 2 runner processes"

/**
 * Workloads 9 and 10 (`--only=cluster-hot,cluster-many`): the hot stream of workload 4 through the cluster beside
 * workload 4's variants (R1's loop, the default handler, the racing one), and many streams through the cluster
 * against a direct handler; the table compares the cluster with racing (9) and with direct (10).
 */
export const clusterWorkloads: ReadonlyArray<Workload> = [
  {
    id: "cluster-hot",
    title: "9. hot stream: commands on one stream, cluster",
    concurrency: [8, 32],
    eventsPerOperation: 1,
    operationUnit: "command",
    seconds: { quick: 2, full: 10 },
    variants: {
      R1: hotStream("R1", fresh()),
      evently: hotStream("evently", fresh()),
      [racing]: hotStream("racing", fresh()),
      [cluster]: hotStream(clusterClient, fresh())
    },
    compare: [{ variant: cluster, baseline: racing }]
  },
  {
    id: "cluster-many",
    title: `10. many streams: commands over ${manyStreams.toLocaleString("en")} streams, cluster`,
    concurrency: [64],
    eventsPerOperation: 1,
    operationUnit: "command",
    seconds: { quick: 2, full: 10 },
    variants: {
      "evently, direct": spread("direct", fresh()),
      [cluster]: spread(clusterClient, fresh())
    },
    compare: [{ variant: cluster, baseline: "evently, direct" }]
  }
]
