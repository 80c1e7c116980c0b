import { assert, it } from "@effect/vitest"
import { CommandHandler, EventCodec, EventStore, RetryPolicy } from "@evently/store"
import { Conflicts } from "@evently/testing"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Latch from "effect/Latch"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Tracer from "effect/Tracer"
import { recording } from "./recordingTracer.ts"

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
type Notes = CommandHandler.CommandHandler<Note, Noted, ReadonlyArray<string>, never>

/** Fails the test, instead of hanging it, when `effect` deadlocks. */
const within = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.timeoutOrElse(effect, {
    duration: "5 seconds",
    orElse: () => Effect.die(new Error("no result in 5 seconds: the commands deadlocked"))
  })

/**
 * A handler on the store in context whose appends first run `before(stream)`: the hook through which a command
 * handles another command from inside its own turn.
 */
const withHook = (
  before: (handler: Notes, stream: string) => Effect.Effect<void>,
  extra: { readonly oneAtATimePerStream?: boolean } = {}
) =>
  Effect.gen(function* () {
    const store = yield* EventStore.EventStore
    let handler: Notes | undefined
    const hooked = EventStore.EventStore.of({
      ...store,
      append: (stream, events, appendOptions) =>
        Effect.andThen(
          Effect.suspend(() => before(handler!, stream)),
          store.append(stream, events, appendOptions)
        )
    })
    handler = yield* Effect.provideService(CommandHandler.make({ ...options, ...extra }), EventStore.EventStore, hooked)
    return handler
  })

/** Runs `nested` once: on the first append that is not its own. */
const once = (nested: (handler: Notes, stream: string) => Effect.Effect<unknown, unknown>) => {
  let done = false
  return (handler: Notes, stream: string) =>
    Effect.suspend(() => {
      if (done) return Effect.void
      done = true
      return Effect.orDie(Effect.asVoid(nested(handler, stream)))
    })
}

it.live("by default, a command handled from inside another command on its own stream completes (same fiber)", () =>
  Effect.gen(function* () {
    const notes = yield* withHook(once((handler, stream) => handler.handle(stream, { _tag: "Note", note: "inner" })))
    const handled = yield* within(notes.handle("notes-1", { _tag: "Note", note: "outer" }))
    // The inner command appended inside the outer one's turn; the outer one met its version and retried once.
    assert.strictEqual(handled.attempts, 2)
    assert.strictEqual(handled.version, 2)
    assert.deepStrictEqual(handled.state, ["inner", "outer"])
  }).pipe(Effect.provide(EventStore.layerMemory))
)

it.live("by default, a command handled in a child fiber the command forks and joins completes", () =>
  Effect.gen(function* () {
    const notes = yield* withHook(
      once((handler, stream) =>
        Effect.flatMap(Effect.forkChild(handler.handle(stream, { _tag: "Note", note: "child" })), Fiber.join)
      )
    )
    const handled = yield* within(notes.handle("notes-2", { _tag: "Note", note: "outer" }))
    assert.strictEqual(handled.attempts, 2)
    assert.deepStrictEqual(handled.state, ["child", "outer"])
  }).pipe(Effect.provide(EventStore.layerMemory))
)

it.live("a command that nests a command on its own stream before every append gives up as the policy says", () =>
  Effect.gen(function* () {
    let inner = 0
    let inside = false
    const notes = yield* withHook((handler, stream) =>
      inside
        ? Effect.void
        : Effect.suspend(() => {
            inside = true
            return handler
              .handle(stream, { _tag: "Note", note: `inner-${++inner}` })
              .pipe(Effect.orDie, Effect.asVoid, Effect.ensuring(Effect.sync(() => (inside = false))))
          })
    )
    const error = yield* within(Effect.flip(notes.handle("notes-3", { _tag: "Note", note: "outer" }))).pipe(
      Effect.provide(RetryPolicy.layer(Schedule.recurs(2)))
    )
    assert.instanceOf(error, CommandHandler.ConcurrencyRetriesExhausted)
    assert.strictEqual(error.attempts, 3)
    // Each attempt's append ran one inner command first, and nothing of the outer command was written.
    const loaded = yield* notes.load("notes-3")
    assert.deepStrictEqual(loaded.state, ["inner-1", "inner-2", "inner-3"])
  }).pipe(Effect.provide(EventStore.layerMemory))
)

it.live("two commands that each handle a command on the other's stream while in their turn do not deadlock", () =>
  Effect.gen(function* () {
    // Both outer commands hold their turn (they are appending) before either handles its nested command.
    const bothIn = yield* Latch.make()
    let arrived = 0
    let nested = 0
    const notes = yield* withHook((handler, stream) =>
      Effect.gen(function* () {
        if (nested >= 2 || (stream !== "notes-a" && stream !== "notes-b")) return
        if (++arrived === 2) yield* bothIn.open
        if (arrived > 2) return
        yield* bothIn.await
        nested++
        const other = stream === "notes-a" ? "notes-b" : "notes-a"
        yield* Effect.orDie(handler.handle(other, { _tag: "Note", note: `from ${stream}` }))
      })
    )
    yield* within(
      Effect.all(
        [
          notes.handle("notes-a", { _tag: "Note", note: "outer a" }),
          notes.handle("notes-b", { _tag: "Note", note: "outer b" })
        ],
        { concurrency: "unbounded" }
      )
    )
    assert.strictEqual(nested, 2)
    assert.sameMembers([...(yield* notes.load("notes-a")).state], ["from notes-b", "outer a"])
    assert.sameMembers([...(yield* notes.load("notes-b")).state], ["from notes-a", "outer b"])
  }).pipe(Effect.provide(EventStore.layerMemory))
)

it.live("by default, 32 concurrent commands on one hot stream all apply once, with the default retry policy", () =>
  Effect.gen(function* () {
    const notes = yield* CommandHandler.make(options)
    const sent = Array.from({ length: 32 }, (_, i) => `note-${i}`)
    const outcomes = yield* Effect.forEach(
      sent,
      (note) => Effect.result(notes.handle("notes-hot", { _tag: "Note", note })),
      { concurrency: "unbounded" }
    )
    assert.deepStrictEqual(
      outcomes.map((outcome) => (Result.isSuccess(outcome) ? outcome.success.attempts : outcome.failure)),
      sent.map(() => 1)
    )
    const fromScratch = yield* Effect.flatMap(CommandHandler.make({ ...options, cache: false }), (h) =>
      h.load("notes-hot")
    )
    assert.strictEqual(fromScratch.version, 32)
    assert.sameMembers([...fromScratch.state], sent)
  }).pipe(Effect.provide(EventStore.layerMemory))
)

it.live("with oneAtATimePerStream: false, commands forced to read the same version race and retry", () =>
  Effect.gen(function* () {
    const notes = yield* CommandHandler.make({ ...options, oneAtATimePerStream: false }).pipe(
      Effect.provide(Conflicts.layer({ rendezvous: 4 }))
    )
    const handled = yield* within(
      Effect.forEach(["a", "b", "c", "d"], (note) => notes.handle("notes-racing", { _tag: "Note", note }), {
        concurrency: "unbounded"
      })
    ).pipe(Effect.provide(RetryPolicy.layer(Schedule.recurs(10))))
    const attempts = handled.map((h) => h.attempts)
    assert.strictEqual(attempts.filter((n) => n === 1).length, 1)
    assert.strictEqual(attempts.filter((n) => n > 1).length, 3)
    assert.strictEqual((yield* notes.load("notes-racing")).version, 4)
  }).pipe(Effect.provide(EventStore.layerMemory))
)

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
