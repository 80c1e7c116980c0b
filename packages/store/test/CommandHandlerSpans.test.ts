import { assert, it } from "@effect/vitest"
import { CommandHandler, EventCodec, EventStore } from "@evently/store"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Tracer from "effect/Tracer"

const Noted = Schema.TaggedUnion({ Noted: { note: Schema.String } })
type Noted = typeof Noted.Type
type Note = { readonly _tag: "Note"; readonly note: string }

const options = {
  decider: {
    initial: [] as ReadonlyArray<string>,
    evolve: (notes: ReadonlyArray<string>, event: Noted) => [...notes, event.note],
    decide: (command: Note) => Result.succeed([Noted.cases.Noted.make({ note: command.note })])
  },
  codec: EventCodec.make(Noted)
}

/** A tracer that records every span it starts. */
const recording = () => {
  const spans: Array<Tracer.NativeSpan> = []
  const tracer = Tracer.make({
    span: (spanOptions) => {
      const span = new Tracer.NativeSpan(spanOptions)
      spans.push(span)
      return span
    }
  })
  return { spans, tracer }
}

/** The nearest span up the parent chain whose name starts with `CommandHandler.`. */
const commandSpanOf = (span: Tracer.AnySpan): Tracer.AnySpan | undefined => {
  let parent = span._tag === "Span" ? span.parent : Option.none()
  while (Option.isSome(parent)) {
    const candidate = parent.value
    if (candidate._tag === "Span" && candidate.name.startsWith("CommandHandler.")) return candidate
    parent = candidate._tag === "Span" ? candidate.parent : Option.none()
  }
  return undefined
}

it.effect("a group's load and append are traced in a span of its own, linked to each of its commands' spans", () => {
  const { spans, tracer } = recording()
  return Effect.gen(function* () {
    const store = yield* EventStore.EventStore
    // The first append waits until released: the commands sent meanwhile queue for the stream's turn.
    const held = yield* Deferred.make<void>()
    const release = yield* Deferred.make<void>()
    let appends = 0
    const holding = EventStore.EventStore.of({
      ...store,
      append: (stream, events, appendOptions) =>
        Effect.suspend(() =>
          ++appends === 1
            ? Deferred.succeed(held, undefined).pipe(
                Effect.andThen(Deferred.await(release)),
                Effect.andThen(store.append(stream, events, appendOptions))
              )
            : store.append(stream, events, appendOptions)
        )
    })
    const notes = yield* Effect.provideService(CommandHandler.make(options), EventStore.EventStore, holding)
    const first = yield* Effect.forkChild(notes.handle("notes-1", { _tag: "Note", note: "a" }))
    yield* Deferred.await(held)
    const queued = yield* Effect.forEach(["b", "c"], (note) =>
      Effect.forkChild(notes.handle("notes-1", { _tag: "Note", note }), { startImmediately: true })
    )
    yield* Deferred.succeed(release, undefined)
    yield* Fiber.join(first)
    const [b, c] = yield* Fiber.joinAll(queued)
    assert.deepStrictEqual([b!.version, c!.version], [2, 3])

    const groups = spans.filter((span) => span.name === "CommandHandler.group")
    assert.strictEqual(groups.length, 1)
    const group = groups[0]!
    assert.deepStrictEqual(Object.fromEntries(group.attributes), { stream: "notes-1", "group.size": 2 })
    assert.isTrue(Option.isNone(group.parent), "the group's span is the root of a trace of its own")
    const handles = spans.filter((span) => span.name === "CommandHandler.handle")
    assert.strictEqual(handles.length, 3)
    const grouped = handles.filter((span) => span.attributes.get("group") === 2)
    assert.strictEqual(grouped.length, 2)
    assert.sameMembers(
      group.links.map((link) => link.span),
      grouped
    )
    // The appends: the first command's under its own span, the group's under the group's span.
    const appendSpans = spans.filter((span) => span.name === "EventStore.memory.append")
    assert.deepStrictEqual(
      appendSpans.map((span) => span.attributes.get("events")),
      [1, 2]
    )
    const firstHandle = handles.find((span) => !grouped.includes(span))!
    assert.strictEqual(commandSpanOf(appendSpans[0]!), firstHandle)
    assert.strictEqual(commandSpanOf(appendSpans[1]!), group)
  }).pipe(Effect.withTracer(tracer), Effect.provide(EventStore.layerMemory))
})
