/**
 * Publishes every cat's events to NATS JetStream after they commit, from the beginning, then live, until Ctrl-C: a
 * `NatsRelay` over the example's database (set `DATABASE_URL`, as for `tail` and `update`). Creates the JetStream
 * stream when it is missing. Run with `pnpm --filter cats relay`; watch the messages with `pnpm --filter cats consume`.
 */
import { NodeRuntime } from "@effect/platform-node"
import { NatsRelay } from "@evently/nats"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as App from "./src/App.ts"
import * as Nats from "./src/Nats.ts"

const program = Effect.gen(function* () {
  const { stream, prefix } = yield* Nats.settings
  yield* Console.log(
    `Relaying the cats' events to JetStream stream ${stream.name} as ${prefix}.cat.<type> (Ctrl-C to stop)`
  )
  // A checkpointed subscription named `cats-nats-relay`: stopped and started again, it goes on where it was.
  return yield* NatsRelay.run({ name: "cats-nats-relay", stream, prefix, create: true, categories: ["cat"] })
})

NodeRuntime.runMain(program.pipe(Effect.provide(Layer.merge(App.layer, Nats.layer))))
