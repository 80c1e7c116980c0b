/**
 * Prints every cat's events as they happen: `stream vN Type {data} (position P)`, history first, then live, until
 * Ctrl-C. Run with `pnpm --filter cats tail`; set `DATABASE_URL` to watch what `update` writes from other terminals.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Subscriptions } from "@evently/store"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as App from "./src/App.ts"

const program = Effect.gen(function* () {
  const subscriptions = yield* Subscriptions.Subscriptions
  // Ephemeral: no checkpoint row and no lock, so any number of tails run at once, each from the beginning, and
  // nothing is left behind when it stops.
  yield* Console.log("Tailing every cat's events (Ctrl-C to stop)")
  yield* subscriptions
    .subscribe("cats-tail", { categories: ["cat"], start: Subscriptions.Beginning, ephemeral: true })
    .pipe(
      Stream.flatMap((batch) => Stream.fromIterable(batch.events)),
      Stream.runForEach((event) =>
        Console.log(
          `${event.stream} v${event.streamVersion} ${event.type} ${JSON.stringify(event.data)} (position ${event.position})`
        )
      )
    )
})

NodeRuntime.runMain(program.pipe(Effect.provide(App.layer)))
