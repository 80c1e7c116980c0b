import { EventCodec, EventStore, ExpectedVersion } from "@evently/store"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"

// Domain events: `_tag` is stored as the event type, the other fields as the JSON data.
const TaskEvents = Schema.Union([
  Schema.TaggedStruct("Created", { title: Schema.String }),
  Schema.TaggedStruct("Completed", {})
])
const codec = EventCodec.make(TaskEvents)

export const program = Effect.gen(function* () {
  const tasks = yield* EventCodec.typedStore(codec)
  yield* tasks.append("task-42", [{ _tag: "Created", title: "Ship the store" }], {
    expected: ExpectedVersion.NoStream
  })
  yield* tasks.append("task-42", [{ _tag: "Completed" }], { expected: ExpectedVersion.Exact(1) })
  // A stale writer is refused with a typed error carrying the actual version.
  const stale = yield* Effect.flip(
    tasks.append("task-42", [{ _tag: "Completed" }], { expected: ExpectedVersion.Exact(1) })
  )
  const events = yield* Stream.runCollect(tasks.readStream("task-42"))
  return { events: [...events].map((e) => [e.streamVersion, e.event] as const), stale: stale.message }
})

// In memory here; on Postgres: Effect.provide(PgEventStore.layerConfig()) from "@evently/postgres".
if (import.meta.main) {
  Effect.runPromise(program.pipe(Effect.provide(EventStore.layerMemory))).then(console.log)
}
