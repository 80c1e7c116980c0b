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
import { config, Json, withDatabase } from "../context.ts"
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

const codecFor = (codecs: { readonly [category: string]: EventlyConfig.Decoder }, category: string) =>
  codecs[category] ?? codecs["*"]

export const verify = Command.make("verify", { pageSize: pageSizeFlag }, ({ pageSize }) =>
  withDatabase(
    Effect.gen(function* () {
      const json = yield* Json
      const codecs = (yield* config).codecs ?? {}
      if (Object.keys(codecs).length === 0) {
        return yield* ExitCode.fail(
          ExitCode.Unavailable,
          "No codecs to verify with: the config module (evently.config.ts, or --config) exports none"
        )
      }
      const findings: Array<Finding> = []
      let checked = 0
      let unchecked = 0
      let after = 0n
      while (true) {
        const page = yield* PgOperations.readPage(after, Math.max(1, pageSize))
        if (page.length === 0) break
        for (const { row } of page) {
          if (Result.isFailure(row)) {
            const e = row.failure
            findings.push({
              position: e.position,
              stream: e.stream,
              type: undefined,
              schemaVersion: undefined,
              error: e.reason
            })
            continue
          }
          const event = row.success
          const codec = codecFor(codecs, event.category)
          if (codec === undefined) {
            unchecked++
            continue
          }
          checked++
          const decoded = yield* Effect.result(codec.decode(event))
          if (Result.isFailure(decoded)) {
            const e = decoded.failure
            findings.push({
              position: e.position,
              stream: e.stream,
              type: e.type,
              schemaVersion: e.schemaVersion,
              error: e.issue
            })
          }
        }
        after = page[page.length - 1]!.position
      }
      if (json) yield* Render.printJson({ checked, unchecked, failures: findings })
      else {
        if (findings.length > 0) {
          yield* Console.log(
            Render.table(
              findings,
              [
                { header: "POSITION", cell: (f) => String(f.position), align: "right" },
                { header: "STREAM", cell: (f) => f.stream },
                { header: "TYPE", cell: (f) => f.type ?? "-" },
                {
                  header: "V",
                  cell: (f) => (f.schemaVersion === undefined ? "-" : String(f.schemaVersion)),
                  align: "right"
                },
                { header: "ERROR", cell: (f) => f.error.replace(/\s+/g, " ") }
              ],
              ""
            )
          )
        }
        yield* Console.log(
          `${checked} event(s) checked, ${findings.length} do not decode${unchecked > 0 ? `, ${unchecked} in categories with no codec (not checked)` : ""}`
        )
      }
      if (findings.length > 0) {
        return yield* ExitCode.fail(ExitCode.Findings, `${findings.length} stored event(s) do not decode`)
      }
    })
  )
).pipe(
  Command.withDescription(
    "Decode every stored event with the application's codecs (from the config module) and report each row that does not decode; exit code 5 when any"
  )
)
