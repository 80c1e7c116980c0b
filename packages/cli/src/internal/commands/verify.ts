/**
 * `evently verify`: every stored event decoded with the application's codecs; each row that does not decode is
 * reported, and the exit code is `ExitCode.Findings` when there is any.
 */
import * as PgOperations from "@evently/postgres/PgOperations"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import { Command, Flag } from "effect/cli"
import type * as EventlyConfig from "../../EventlyConfig.ts"
import * as ExitCode from "../../ExitCode.ts"
import { config, Json, own, withDatabase } from "../context.ts"
import * as Render from "../render.ts"

/** A row that does not decode. */
interface Finding {
  readonly position: bigint
  readonly stream: string
  readonly type: string | undefined
  readonly schemaVersion: number | undefined
  readonly error: string
}

const pageSizeFlag = Flag.Int("page-size").pipe(Flag.withDescription("Rows read per query"), Flag.withDefault(1000))

type Codecs = { readonly [category: string]: EventlyConfig.Decoder }

/** What a scan of the log found. */
interface Report {
  checked: number
  unchecked: number
  readonly failures: Array<Finding>
}

// One row: an unreadable row is a finding as it is; a readable one is decoded with its category's codec, if any.
const check = Effect.fnUntraced(function* (codecs: Codecs, row: PgOperations.PageRow, report: Report) {
  if (Result.isFailure(row)) {
    const e = row.failure
    report.failures.push({
      position: e.position,
      stream: e.stream,
      type: undefined,
      schemaVersion: undefined,
      error: e.reason
    })
    return
  }
  const codec = own(codecs, row.success.category) ?? own(codecs, "*")
  if (codec === undefined) {
    report.unchecked++
    return
  }
  report.checked++
  const decoded = yield* Effect.result(codec.decode(row.success))
  if (Result.isSuccess(decoded)) return
  const e = decoded.failure
  report.failures.push({
    position: e.position,
    stream: e.stream,
    type: e.type,
    schemaVersion: e.schemaVersion,
    error: e.issue
  })
})

// The whole log in position order, a page at a time.
const scan = Effect.fnUntraced(function* (codecs: Codecs, pageSize: number) {
  const report: Report = { checked: 0, unchecked: 0, failures: [] }
  let after = 0n
  while (true) {
    const page = yield* PgOperations.readPage(after, Math.max(1, pageSize))
    if (page.length === 0) return report
    for (const { row } of page) yield* check(codecs, row, report)
    after = page[page.length - 1]!.position
  }
})

const renderReport = (report: Report): string => {
  const table = Render.table(
    report.failures,
    [
      { header: "POSITION", cell: (f) => String(f.position), align: "right" },
      { header: "STREAM", cell: (f) => f.stream },
      { header: "TYPE", cell: (f) => f.type ?? "-" },
      { header: "V", cell: (f) => (f.schemaVersion === undefined ? "-" : String(f.schemaVersion)), align: "right" },
      { header: "ERROR", cell: (f) => f.error.replace(/\s+/g, " ") }
    ],
    ""
  )
  const unchecked = report.unchecked > 0 ? `, ${report.unchecked} in categories with no codec (not checked)` : ""
  const summary = `${report.checked} event(s) checked, ${report.failures.length} do not decode${unchecked}`
  return table === "" ? summary : `${table}\n${summary}`
}

export const verify = Command.make("verify", { pageSize: pageSizeFlag }, ({ pageSize }) =>
  withDatabase(
    Effect.gen(function* () {
      const codecs = (yield* config).codecs ?? {}
      if (Object.keys(codecs).length === 0) {
        return yield* ExitCode.fail(
          ExitCode.Unavailable,
          "No codecs to verify with: the config module (evently.config.ts, or --config) exports none"
        )
      }
      const report = yield* scan(codecs, pageSize)
      if (yield* Json) yield* Render.printJson(report)
      else yield* Console.log(renderReport(report))
      if (report.failures.length > 0) {
        return yield* ExitCode.fail(ExitCode.Findings, `${report.failures.length} stored event(s) do not decode`)
      }
    })
  )
).pipe(
  Command.withDescription(
    "Decode every stored event with the application's codecs (from the config module) and report each row that does not decode; exit code 5 when any"
  )
)
