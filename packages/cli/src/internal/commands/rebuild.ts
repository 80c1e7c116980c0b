/**
 * `evently rebuild <projection>`: a blue/green rebuild of a table projection from the config module, through
 * `PgProjections.rebuild`: a new build from the beginning beside the active one, which keeps serving until the new
 * one has caught up and takes over.
 */
import * as PgProjections from "@evently/postgres/PgProjections"
import * as PgSubscriptions from "@evently/postgres/PgSubscriptions"
import type * as Projection from "@evently/store/Projection"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import { Argument, Command, Flag, TerminalCapabilities } from "effect/cli"
import * as ExitCode from "../../ExitCode.ts"
import { config, Json, own, withDatabase } from "../context.ts"
import * as Progress from "../progress.ts"
import * as Render from "../render.ts"

const projectionArg = Argument.String("projection").pipe(
  Argument.withDescription("The projection's key (or name) in the config module")
)
const intervalFlag = Flag.Int("progress-interval").pipe(
  Flag.withDescription("Seconds between progress reports"),
  Flag.withDefault(1)
)

const find = Effect.fnUntraced(function* (name: string) {
  const projections = (yield* config).projections ?? {}
  const found = own(projections, name) ?? Object.values(projections).find((p) => p.name === name)
  if (found !== undefined) return found
  const known = Object.keys(projections)
  return yield* ExitCode.fail(
    ExitCode.NotFound,
    `No projection '${name}' in the config module${known.length === 0 ? " (it has none)" : `; it has ${known.join(", ")}`}`
  )
})

export const rebuild = Command.make(
  "rebuild",
  { projection: projectionArg, interval: intervalFlag },
  ({ interval, projection: name }) =>
    withDatabase(
      Effect.gen(function* () {
        const json = yield* Json
        // The CLI has no services of the application to give: a projection's handlers may use only the SqlClient.
        const projection = (yield* find(name)) as Projection.Projection<unknown, never>
        const animate = !json && (yield* TerminalCapabilities.TerminalCapabilities).canAnimate
        const label = `${projection.name} v${projection.version}`
        const started = yield* Clock.currentTimeMillis
        const build = yield* PgProjections.rebuild(projection, {
          onProgress: (p) => Progress.show(label, p, animate),
          progressInterval: `${Math.max(1, interval)} seconds`
        }).pipe(
          Effect.provide(PgSubscriptions.layer()),
          Effect.mapError((error) =>
            error._tag === "InvalidProjection" ? ExitCode.fail(ExitCode.Failed, error.message) : error
          )
        )
        yield* Progress.end(animate)
        const seconds = ((yield* Clock.currentTimeMillis) - started) / 1000
        if (json) return yield* Render.printJson({ build, seconds })
        yield* Console.log(
          `rebuilt '${projection.name}' version ${build.version} as build ${build.build} in ${Render.seconds(seconds)}: ${build.state}, tables ${Object.values(build.tables).join(", ")}`
        )
      })
    )
).pipe(
  Command.withDescription(
    "Rebuild a table projection from the beginning, blue/green: the active build keeps serving until the new one has caught up and takes over; a progress bar on a terminal, plain lines otherwise"
  ),
  Command.withExamples([{ command: "evently rebuild tasks_by_assignee", description: "Rebuild from scratch" }])
)
