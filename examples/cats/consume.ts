/**
 * Prints the cats' events from NATS JetStream, as a service without access to the database would read them: a durable
 * JetStream consumer (`cats-consume`) decoded with the cats' codec, each acked once printed, until Ctrl-C. Stopped
 * and started again, it goes on after the last one it acked. Run with `pnpm --filter cats consume`, next to `relay`.
 */
import { NodeRuntime } from "@effect/platform-node"
import { JetStreamStream, NatsConsumer, Subjects } from "@evently/nats"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as Cat from "./src/Cat.ts"
import * as Nats from "./src/Nats.ts"

const program = Effect.gen(function* () {
  const { stream, prefix } = yield* Nats.settings
  // The same stream the relay creates, so that either may start first.
  yield* JetStreamStream.ensure(stream, { create: true, prefix })
  yield* Console.log(`Consuming the cats' events from JetStream stream ${stream.name} (Ctrl-C to stop)`)
  yield* NatsConsumer.typed(Cat.codec, {
    stream: stream.name,
    durable: "cats-consume",
    filterSubjects: Subjects.filter({ prefix, categories: ["cat"] })
  }).pipe(
    Stream.runForEach((delivery) => {
      const { event, subject } = delivery
      const { _tag, ...data } = event.event
      return Effect.andThen(
        Console.log(`${event.stream} v${event.streamVersion} ${_tag} ${JSON.stringify(data)} (${subject})`),
        delivery.ack
      )
    })
  )
})

NodeRuntime.runMain(program.pipe(Effect.provide(Nats.layer)))
