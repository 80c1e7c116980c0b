/**
 * Loads a cat, shows it and its version, waits for Enter, then appends its next event expecting exactly the version
 * it loaded. If another process appended in between, it fails with a conflict message and exit code 1.
 * Run with `pnpm --filter cats update tom` (in two terminals, with `DATABASE_URL` set, to see the conflict).
 */
import { NodeRuntime, NodeTerminal } from "@effect/platform-node"
import { EventCodec, ExpectedVersion } from "@evently/store"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Runtime from "effect/Runtime"
import * as Stream from "effect/Stream"
import * as Terminal from "effect/Terminal"
import * as App from "./src/App.ts"
import * as Cat from "./src/Cat.ts"

class Conflict extends Data.TaggedError("Conflict")<{ readonly message: string }> {
  // Printed by the program itself: runMain only sets the exit code (1).
  override readonly [Runtime.errorReported] = false
}

class Usage extends Data.TaggedError("Usage")<{ readonly message: string }> {}

const program = Effect.gen(function* () {
  const name = process.argv[2]
  if (name === undefined || name === "") {
    return yield* new Usage({ message: "usage: pnpm --filter cats update <name>" })
  }
  const store = yield* EventCodec.typedStore(Cat.codec)
  const terminal = yield* Terminal.Terminal
  const stream = Cat.streamOf(name)

  const [cat, version] = yield* Stream.runFold(
    store.readStream(stream),
    (): readonly [Cat.Cat, number] => [Cat.initial, 0],
    ([folded], recorded) => [Cat.evolve(folded, recorded.event), recorded.streamVersion] as const
  )
  yield* Console.log(`Loaded ${stream} at version ${version}: ${Cat.describe(cat)}`)
  const event = Cat.next(name, version)
  const { _tag, ...data } = event
  yield* Console.log(`Press Enter to append ${_tag} ${JSON.stringify(data)} expecting version ${version}`)
  yield* terminal.readLine

  const appended = yield* store
    .append(stream, [event], { expected: ExpectedVersion.Exact(version) })
    .pipe(
      Effect.catchTag("WrongExpectedVersion", (wrong) =>
        Effect.fail(new Conflict({ message: Cat.conflictMessage(stream, version, wrong.actual) }))
      )
    )
  yield* Console.log(`Appended ${_tag} to ${stream}: now at version ${appended.version}`)
}).pipe(Effect.tapError((error) => (error._tag === "Conflict" ? Console.error(error.message) : Effect.void)))

NodeRuntime.runMain(program.pipe(Effect.provide(Layer.merge(App.layer, NodeTerminal.layer))))
