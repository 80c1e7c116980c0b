/**
 * `evently diagram <machine>`: the machine's Mermaid state diagram.
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import { Argument, Command } from "effect/cli"
import * as ExitCode from "../../ExitCode.ts"
import { config, Json, own } from "../context.ts"
import * as Render from "../render.ts"

export const diagram = Command.make(
  "diagram",
  { machine: Argument.String("machine").pipe(Argument.withDescription("The machine's name in the config module")) },
  ({ machine }) =>
    Effect.gen(function* () {
      const machines = (yield* config).machines ?? {}
      const found = own(machines, machine)
      if (found === undefined) {
        const known = Object.keys(machines)
        return yield* ExitCode.fail(
          ExitCode.NotFound,
          `No machine '${machine}' in the config module${known.length === 0 ? " (it has none)" : `; it has ${known.join(", ")}`}`
        )
      }
      if (yield* Json) return yield* Render.printJson({ machine, mermaid: found.mermaid, graph: found.graph })
      yield* Console.log(found.mermaid)
    })
).pipe(Command.withDescription("Print a machine's state diagram as Mermaid (paste it into any Mermaid renderer)"))
