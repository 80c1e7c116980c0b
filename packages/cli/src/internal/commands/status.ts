/**
 * `evently status [--watch]`: every subscription partition's checkpoint, lag, worker and parked events, and the
 * transaction that holds the log back.
 */
import * as PgOperations from "@evently/postgres/PgOperations"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { Command, Flag } from "effect/cli"
import { Json, withDatabase } from "../context.ts"
import * as Render from "../render.ts"

const watchFlag = Flag.Boolean("watch").pipe(
  Flag.withAlias("w"),
  Flag.withDescription("Refresh in place until interrupted"),
  Flag.withDefault(false)
)

const intervalFlag = Flag.Int("interval").pipe(
  Flag.withDescription("Seconds between refreshes with --watch"),
  Flag.withDefault(2)
)

const workerCell = (worker: PgOperations.Worker | undefined) => {
  if (worker === undefined) return "none"
  const where = worker.clientHostname ?? worker.clientAddress ?? "local socket"
  return `pid ${worker.pid} @ ${where}${worker.applicationName === "" ? "" : ` (${worker.applicationName})`}`
}

const projectionCell = (build: PgOperations.ProjectionBuild | undefined) =>
  build === undefined
    ? "-"
    : `${build.name} v${build.version}${build.build === 1 ? "" : `b${build.build}`} ${build.state}`

/** The status report as a table and, when there is one, a line about the transaction holding the log back. */
export const renderStatus = (report: PgOperations.StatusReport): string => {
  const partitions = Render.table<PgOperations.PartitionReport>(
    report.partitions,
    [
      { header: "SUBSCRIPTION", cell: (r) => r.subscription },
      { header: "PART", cell: (r) => `${r.partition}/${r.partitions}`, align: "right" },
      { header: "CHECKPOINT", cell: (r) => String(r.checkpoint.position), align: "right" },
      { header: "LAG", cell: (r) => String(r.lagEvents), align: "right" },
      { header: "LAG AGE", cell: (r) => (r.lagEvents === 0 ? "-" : Render.seconds(r.lagSeconds)), align: "right" },
      { header: "PARKED", cell: (r) => String(r.parked), align: "right" },
      { header: "PROJECTION", cell: (r) => projectionCell(r.projection) },
      { header: "WORKER", cell: (r) => workerCell(r.worker) },
      { header: "CONNECTED SINCE", cell: (r) => Render.date(r.worker?.backendStart) },
      { header: "LAST COMMIT", cell: (r) => Render.date(r.updatedAt) }
    ],
    "No subscription has a checkpoint yet."
  )
  const holder = report.xminHolder
  if (holder === undefined) return partitions
  return `${partitions}\n\nHeld back: ${holder.heldEvents} committed event(s) wait behind the open transaction of pid ${holder.pid} (${holder.state ?? "?"} since ${Render.date(holder.transactionStart)}, ${holder.applicationName || "no application name"}${holder.clientAddress === null ? "" : ` from ${holder.clientAddress}`}): ${Render.excerpt(holder.query, 100)}`
}

const once = (json: boolean) =>
  Effect.flatMap(PgOperations.status, (report) => (json ? Render.printJson(report) : Console.log(renderStatus(report))))

// Redrawn over the previous frame (cursor home, each line cleared to its end, the rest of the screen cleared), so
// the table does not flicker; with --json, one document per line.
const frame = (report: PgOperations.StatusReport, at: Date) =>
  `\x1b[H${`${renderStatus(report)}\n\n${Render.date(at)} UTC; refreshing, Ctrl-C to stop`
    .split("\n")
    .map((line) => `${line}\x1b[K`)
    .join("\n")}\x1b[J`

const refresh = (json: boolean) =>
  Effect.gen(function* () {
    const report = yield* PgOperations.status
    if (json) return yield* Console.log(Render.toJson(report))
    yield* Console.log(frame(report, new Date(yield* Clock.currentTimeMillis)))
  })

export const status = Command.make("status", { watch: watchFlag, interval: intervalFlag }, ({ interval, watch }) =>
  withDatabase(
    Effect.gen(function* () {
      const json = yield* Json
      if (!watch) return yield* once(json)
      if (!json) yield* Console.log("\x1b[2J")
      yield* Effect.repeat(refresh(json), Schedule.spaced(Duration.seconds(Math.max(1, interval))))
    })
  )
).pipe(
  Command.withDescription(
    "Every durable subscription per partition: checkpoint, lag (events and age of the oldest), parked events, the worker holding it, and the transaction holding the log back"
  ),
  Command.withExamples([
    { command: "evently status", description: "One table" },
    { command: "evently status --watch", description: "Refreshed every 2 seconds" },
    { command: "evently status --json", description: "For scripts" }
  ])
)
