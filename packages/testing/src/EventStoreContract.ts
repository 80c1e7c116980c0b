/**
 * The contract every `EventStore` implementation must meet, as one suite of `@effect/vitest` tests that each adapter
 * runs against its own layer.
 *
 * @since 0.1.0
 */
import { assert, layer } from "@effect/vitest"
import { CommandHandler, EventCodec, EventStore, ExpectedVersion, StreamName } from "@evently/store"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Inspectable from "effect/Inspectable"
import type * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"

/**
 * Options of the contract suite: the per-test timeout (default 60 seconds).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly timeout?: Duration.Input | undefined
}

const unique = (): string => crypto.randomUUID().replaceAll("-", "").slice(0, 16)

/** A fresh stream name (and category) per test, so tests sharing one store never see each other's streams. */
const freshStream = (category = `c${unique()}`) => `${category}-${unique()}`

const uuid = (): string => crypto.randomUUID()

const collect = <A, E, R>(stream: Stream.Stream<A, E, R>) => Effect.map(Stream.runCollect(stream), (c) => [...c])

const range = (from: number, to: number): Array<number> =>
  Array.from({ length: Math.abs(to - from) + 1 }, (_, i) => (from <= to ? from + i : from - i))

const positions = (events: ReadonlyArray<EventStore.RecordedEvent>): Array<bigint> => events.map((e) => e.position)

const fixedClock = (real: Clock.Clock, millis: number): Clock.Clock => ({
  currentTimeMillisUnsafe: () => millis,
  currentTimeMillis: Effect.succeed(millis),
  currentTimeNanosUnsafe: () => BigInt(millis) * 1_000_000n,
  currentTimeNanos: Effect.succeed(BigInt(millis) * 1_000_000n),
  monotonicTimeNanosUnsafe: () => real.monotonicTimeNanosUnsafe(),
  monotonicTimeNanos: real.monotonicTimeNanos,
  sleep: (duration) => real.sleep(duration)
})

const nested = (depth: number): unknown => {
  let value: unknown = "bottom"
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? { d: value } : [value]
  return value
}

const cycle = (): unknown => {
  const node: Record<string, unknown> = { name: "loop" }
  node.self = { back: node }
  return node
}

/** Runs a read and checks that it fails with `InvalidReadOptions` naming `operation` and `option`. */
const refused = (
  label: string,
  read: Stream.Stream<EventStore.RecordedEvent, unknown>,
  option: string,
  operation: string
) =>
  Effect.gen(function* () {
    const exit = yield* Effect.exit(Stream.runDrain(read))
    assert.isTrue(exit._tag === "Failure", `${operation} ${label} was not refused`)
    const error = exit._tag === "Failure" ? Cause.squash(exit.cause) : undefined
    assert.strictEqual((error as { _tag: string })._tag, "InvalidReadOptions", `${operation} ${label}`)
    const invalid = error as EventStore.InvalidReadOptions
    assert.deepStrictEqual([invalid.operation, invalid.option], [operation, option], label)
  })

/** A decider with one event, for the command handler's name checks. */
const Counted = Schema.TaggedUnion({ Added: {} })
const counterCodec = EventCodec.make(Counted)
const counter = {
  initial: 0,
  decide: (_command: { readonly _tag: "Add" }, _state: number) => Result.succeed([Counted.cases.Added.make({})]),
  evolve: (state: number) => state + 1
}

/**
 * Registers the contract suite under `suiteName` for a layer that provides an `EventStore`. The layer is built once for
 * the suite; every test writes to streams and categories of its own (random names), so the store need not be empty.
 *
 * @since 0.1.0
 * @category suites
 */
export const suite = <E>(
  suiteName: string,
  store: Layer.Layer<EventStore.EventStore, E>,
  suiteOptions: Options = {}
): void =>
  layer(store, { excludeTestServices: true, timeout: suiteOptions.timeout ?? "60 seconds" })(suiteName, (it) => {
    const timeout = Duration.toMillis(Duration.fromInputUnsafe(suiteOptions.timeout ?? "60 seconds"))
    it.effect(
      "appends and reads back every field of a recorded event",
      () =>
        Effect.gen(function* () {
          const es = yield* EventStore.EventStore
          const stream = freshStream()
          const category = stream.slice(0, stream.indexOf("-"))
          const id = uuid().toUpperCase()
          const first = yield* es.append(
            stream,
            [
              { type: "Created", data: { title: "write tests", tags: ["a", "b"], n: 1.5 }, eventId: id },
              { type: "Renamed", data: { title: "write more tests" }, schemaVersion: 3 }
            ],
            { expected: ExpectedVersion.NoStream }
          )
          assert.strictEqual(first.stream, stream)
          assert.strictEqual(first.version, 2)
          assert.strictEqual(first.positions.length, 2)
          assert.isTrue(first.positions[0]! < first.positions[1]!)
          const second = yield* es.append(stream, [{ type: "Done", data: null }], {
            expected: ExpectedVersion.Exact(2)
          })
          assert.strictEqual(second.version, 3)
          assert.isTrue(second.positions[0]! > first.positions[1]!)

          const events = yield* collect(es.readStream(stream))
          assert.deepStrictEqual(
            events.map((e) => [e.stream, e.category, e.streamVersion, e.type, e.schemaVersion, e.data]),
            [
              [stream, category, 1, "Created", 1, { title: "write tests", tags: ["a", "b"], n: 1.5 }],
              [stream, category, 2, "Renamed", 3, { title: "write more tests" }],
              [stream, category, 3, "Done", 1, null]
            ]
          )
          assert.deepStrictEqual(
            events.map((e) => e.position),
            [...first.positions, ...second.positions]
          )
          assert.strictEqual(events[0]!.eventId, id.toLowerCase())
          assert.match(events[1]!.eventId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
          assert.strictEqual(typeof events[0]!.transactionId, "bigint")
          assert.strictEqual(events[0]!.transactionId, events[1]!.transactionId)
          assert.isTrue(events[2]!.transactionId > events[1]!.transactionId)
          assert.strictEqual(yield* es.streamVersion(stream), 3)
          assert.strictEqual(yield* es.streamVersion(freshStream()), 0)
        }),
      timeout
    )

    it.effect(
      "records recordedAt from the Clock of the appending fiber",
      () =>
        Effect.gen(function* () {
          const es = yield* EventStore.EventStore
          const stream = freshStream()
          const millis = 1_893_553_445_678 // 2030-01-02T03:04:05.678Z
          yield* Effect.clockWith((real) =>
            es
              .append(stream, [
                { type: "A", data: {} },
                { type: "B", data: {} }
              ])
              .pipe(Effect.provideService(Clock.Clock, fixedClock(real, millis)))
          )
          const events = yield* collect(es.readStream(stream))
          assert.deepStrictEqual(
            events.map((e) => DateTime.toEpochMillis(e.recordedAt)),
            [millis, millis]
          )
          assert.strictEqual(DateTime.formatIso(events[0]!.recordedAt), "2030-01-02T03:04:05.678Z")
        }),
      timeout
    )

    it.effect(
      "keeps metadata: the append's, each event's over it, headers merged",
      () =>
        Effect.gen(function* () {
          const es = yield* EventStore.EventStore
          const stream = freshStream()
          yield* es.append(
            stream,
            [
              { type: "A", data: 1 },
              { type: "B", data: 2, metadata: { causationId: "cause-2", headers: { b: "2", shared: "event" } } }
            ],
            { metadata: { correlationId: "corr-1", headers: { a: "1", shared: "append" } } }
          )
          const events = yield* collect(es.readStream(stream))
          assert.deepStrictEqual(events[0]!.metadata, {
            correlationId: "corr-1",
            headers: { a: "1", shared: "append" }
          })
          assert.deepStrictEqual(events[1]!.metadata, {
            correlationId: "corr-1",
            causationId: "cause-2",
            headers: { a: "1", b: "2", shared: "event" }
          })
          yield* es.append(stream, [{ type: "C", data: 3 }])
          const [last] = yield* collect(es.readStream(stream, { direction: "backward", limit: 1 }))
          assert.deepStrictEqual(last!.metadata, {})
        }),
      timeout
    )

    it.effect(
      "checks each expected version and reports the actual version",
      () =>
        Effect.gen(function* () {
          const es = yield* EventStore.EventStore
          const stream = freshStream()
          const one = [{ type: "E", data: {} }]
          const exists = yield* Effect.flip(es.append(stream, one, { expected: ExpectedVersion.StreamExists }))
          assert.strictEqual(exists._tag, "WrongExpectedVersion")
          assert.deepStrictEqual(exists._tag === "WrongExpectedVersion" && [exists.stream, exists.actual], [stream, 0])
          const exact1 = yield* Effect.flip(es.append(stream, one, { expected: ExpectedVersion.Exact(1) }))
          assert.deepStrictEqual(exact1._tag === "WrongExpectedVersion" && exact1.actual, 0)
          assert.strictEqual((yield* es.append(stream, one, { expected: ExpectedVersion.Exact(0) })).version, 1)
          const again = yield* Effect.flip(es.append(stream, one, { expected: ExpectedVersion.NoStream }))
          assert.deepStrictEqual(again._tag === "WrongExpectedVersion" && [again.expected, again.actual], [
            ExpectedVersion.NoStream,
            1
          ])
          assert.strictEqual((yield* es.append(stream, one, { expected: ExpectedVersion.StreamExists })).version, 2)
          assert.strictEqual((yield* es.append(stream, one, { expected: ExpectedVersion.Any })).version, 3)
          assert.strictEqual((yield* es.append(stream, one)).version, 4)
          const stale = yield* Effect.flip(es.append(stream, one, { expected: ExpectedVersion.Exact(2) }))
          assert.deepStrictEqual(stale._tag === "WrongExpectedVersion" && [stale.expected, stale.actual], [
            ExpectedVersion.Exact(2),
            4
          ])
          assert.strictEqual(yield* es.streamVersion(stream), 4)
          // An empty batch writes nothing but still checks the expectation.
          const empty = yield* es.append(stream, [], { expected: ExpectedVersion.Exact(4) })
          assert.deepStrictEqual([empty.stream, empty.version, empty.positions], [stream, 4, []])
          const emptyStale = yield* Effect.flip(es.append(stream, [], { expected: ExpectedVersion.NoStream }))
          assert.strictEqual(emptyStale._tag, "WrongExpectedVersion")
        }),
      timeout
    )

    it.effect(
      "50 concurrent Exact(v) appends: exactly one wins each version, the rest get the typed error",
      () =>
        Effect.gen(function* () {
          const es = yield* EventStore.EventStore
          const stream = freshStream()
          const rounds = 4
          for (let round = 0; round < rounds; round++) {
            const outcomes = yield* Effect.all(
              Array.from({ length: 50 }, (_, writer) =>
                Effect.result(
                  es.append(stream, [{ type: "Claimed", data: { round, writer } }], {
                    expected: ExpectedVersion.Exact(round)
                  })
                )
              ),
              { concurrency: "unbounded" }
            )
            const wins = outcomes.filter((o) => o._tag === "Success")
            assert.strictEqual(wins.length, 1, `round ${round}: one winner`)
            assert.strictEqual(wins[0]!._tag === "Success" && wins[0]!.success.version, round + 1)
            for (const outcome of outcomes) {
              if (outcome._tag === "Failure") {
                assert.strictEqual(outcome.failure._tag, "WrongExpectedVersion")
                assert.deepStrictEqual(
                  outcome.failure._tag === "WrongExpectedVersion" && [outcome.failure.expected, outcome.failure.actual],
                  [ExpectedVersion.Exact(round), round + 1]
                )
              }
            }
          }
          // Then 50 writers that each retry until their own event is in: versions 1..n, no gap, no duplicate.
          const writer = (n: number): Effect.Effect<number, EventStore.AppendError> =>
            Effect.flatMap(es.streamVersion(stream), (version) =>
              es.append(stream, [{ type: "Written", data: { n } }], { expected: ExpectedVersion.Exact(version) })
            ).pipe(
              Effect.as(0),
              Effect.catchTag("WrongExpectedVersion", () => Effect.map(writer(n), (lost) => lost + 1))
            )
          yield* Effect.all(
            Array.from({ length: 50 }, (_, n) => writer(n)),
            { concurrency: "unbounded" }
          )
          const events = yield* collect(es.readStream(stream, { batchSize: 7 }))
          assert.deepStrictEqual(
            events.map((e) => e.streamVersion),
            Array.from({ length: rounds + 50 }, (_, i) => i + 1)
          )
          const written = events.filter((e) => e.type === "Written").map((e) => (e.data as { n: number }).n)
          assert.deepStrictEqual(
            [...written].sort((a, b) => a - b),
            Array.from({ length: 50 }, (_, i) => i)
          )
          const order = positions(events)
          assert.isTrue(order.every((p, i) => i === 0 || p > order[i - 1]!))
        }),
      timeout
    )

    it.effect(
      "concurrent NoStream appends: exactly one creates the stream",
      () =>
        Effect.gen(function* () {
          const es = yield* EventStore.EventStore
          const stream = freshStream()
          const outcomes = yield* Effect.all(
            Array.from({ length: 20 }, (_, n) =>
              Effect.result(
                es.append(stream, [{ type: "Created", data: { n } }], { expected: ExpectedVersion.NoStream })
              )
            ),
            { concurrency: "unbounded" }
          )
          assert.strictEqual(outcomes.filter((o) => o._tag === "Success").length, 1)
          for (const outcome of outcomes) {
            if (outcome._tag === "Failure") {
              assert.deepStrictEqual(
                outcome.failure._tag === "WrongExpectedVersion" && [outcome.failure.expected, outcome.failure.actual],
                [ExpectedVersion.NoStream, 1]
              )
            }
          }
          assert.strictEqual(yield* es.streamVersion(stream), 1)
        }),
      timeout
    )

    it.effect(
      "concurrent StreamExists appends race a NoStream creator without gaps",
      () =>
        Effect.gen(function* () {
          const es = yield* EventStore.EventStore
          const stream = freshStream()
          const attempts = [
            ...Array.from({ length: 15 }, (_, n) =>
              es.append(stream, [{ type: "Touched", data: { n } }], { expected: ExpectedVersion.StreamExists })
            ),
            es.append(stream, [{ type: "Created", data: {} }], { expected: ExpectedVersion.NoStream })
          ]
          const outcomes = yield* Effect.all(attempts.map(Effect.result), { concurrency: "unbounded" })
          assert.strictEqual(outcomes[15]!._tag, "Success")
          const touched = outcomes.slice(0, 15).filter((o) => o._tag === "Success").length
          for (const outcome of outcomes) {
            if (outcome._tag === "Failure") {
              assert.deepStrictEqual(
                outcome.failure._tag === "WrongExpectedVersion" && [outcome.failure.expected, outcome.failure.actual],
                [ExpectedVersion.StreamExists, 0]
              )
            }
          }
          const events = yield* collect(es.readStream(stream))
          assert.strictEqual(events.length, touched + 1)
          assert.strictEqual(events[0]!.type, "Created")
          assert.deepStrictEqual(
            events.map((e) => e.streamVersion),
            Array.from({ length: touched + 1 }, (_, i) => i + 1)
          )
          // On an existing stream every concurrent StreamExists append succeeds, in some order, with no gap.
          yield* Effect.all(
            Array.from({ length: 20 }, (_, n) =>
              es.append(stream, [{ type: "More", data: { n } }], { expected: ExpectedVersion.StreamExists })
            ),
            { concurrency: "unbounded" }
          )
          assert.strictEqual(yield* es.streamVersion(stream), touched + 21)
        }),
      timeout
    )

    it.effect(
      "refuses invalid events before writing anything, naming the event",
      () =>
        Effect.gen(function* () {
          const es = yield* EventStore.EventStore
          const stream = freshStream()
          const good = { type: "Good", data: { ok: true } }
          const sparse: Array<unknown> = [1]
          sparse[2] = 3
          const invalid: ReadonlyArray<readonly [string, EventStore.NewEvent]> = [
            ["undefined data", { type: "Bad", data: undefined }],
            ["undefined field", { type: "Bad", data: { a: undefined } }],
            ["function", { type: "Bad", data: { f: () => 1 } }],
            ["symbol", { type: "Bad", data: [Symbol("s")] }],
            ["bigint", { type: "Bad", data: { n: 1n } }],
            ["NaN", { type: "Bad", data: { n: Number.NaN } }],
            ["Infinity", { type: "Bad", data: [Number.POSITIVE_INFINITY] }],
            ["cycle", { type: "Bad", data: cycle() }],
            ["NUL in a string", { type: "Bad", data: { s: "a\u0000b" } }],
            ["NUL in a key", { type: "Bad", data: { "k\u0000": 1 } }],
            ["lone surrogate", { type: "Bad", data: "\ud800" }],
            ["too deep", { type: "Bad", data: nested(EventStore.maxDepth + 1) }],
            ["very deep", { type: "Bad", data: nested(100_000) }],
            ["a Date", { type: "Bad", data: { at: new Date(0) } }],
            ["a Map", { type: "Bad", data: new Map() }],
            ["a sparse array", { type: "Bad", data: sparse }],
            ["too large", { type: "Bad", data: "x".repeat(EventStore.maxEventBytes + 1) }],
            ["empty type", { type: "", data: {} }],
            ["NUL in the type", { type: "A\u0000", data: {} }],
            ["schema version 0", { type: "Bad", data: {}, schemaVersion: 0 }],
            ["schema version 1.5", { type: "Bad", data: {}, schemaVersion: 1.5 }],
            ["event id not a UUID", { type: "Bad", data: {}, eventId: "'; drop table events; --" }],
            ["NUL in metadata", { type: "Bad", data: {}, metadata: { correlationId: "\u0000" } }]
          ]
          for (const [label, bad] of invalid) {
            const error = yield* Effect.flip(es.append(stream, [good, bad, good]))
            assert.strictEqual(error._tag, "InvalidEvent", label)
            assert.strictEqual(error._tag === "InvalidEvent" && error.index, 1, label)
          }
          const id = uuid()
          const duplicate = yield* Effect.flip(
            es.append(stream, [
              { ...good, eventId: id },
              { ...good, eventId: id }
            ])
          )
          assert.strictEqual(duplicate._tag, "InvalidEvent")
          const badExpected = yield* Effect.flip(es.append(stream, [good], { expected: ExpectedVersion.Exact(-1) }))
          assert.strictEqual(badExpected._tag === "InvalidEvent" && badExpected.index, -1)
          const badMetadata = yield* Effect.flip(
            es.append(stream, [good], { metadata: { headers: { h: 1 } } as unknown as EventStore.Metadata })
          )
          assert.strictEqual(badMetadata._tag === "InvalidEvent" && badMetadata.index, -1)
          assert.strictEqual(yield* es.streamVersion(stream), 0)
          assert.deepStrictEqual(yield* collect(es.readStream(stream)), [])
          // The same store still takes a valid batch on that stream.
          assert.strictEqual(
            (yield* es.append(stream, [good, good], { expected: ExpectedVersion.NoStream })).version,
            2
          )
        }),
      timeout
    )

    it.effect(
      "refuses malformed stream names with a typed error",
      () =>
        Effect.gen(function* () {
          const es = yield* EventStore.EventStore
          const names = [
            "",
            "nodash",
            "-id",
            "cat-",
            "'; drop table evently_events; --",
            "bad category-1",
            "cat\u0000-1",
            "cat-\u0000",
            `c-${"x".repeat(600)}`,
            "ca'te-1"
          ]
          for (const name of names) {
            const append = yield* Effect.flip(es.append(name, [{ type: "A", data: {} }]))
            assert.strictEqual(append._tag, "InvalidStreamName", JSON.stringify(name))
            const read = yield* Effect.flip(Stream.runDrain(es.readStream(name)))
            assert.strictEqual(read._tag, "InvalidStreamName")
            const version = yield* Effect.flip(es.streamVersion(name))
            assert.strictEqual(version._tag, "InvalidStreamName")
          }
        }),
      timeout
    )

    it.effect(
      "refuses stream names and categories that are not well-formed Unicode, which Postgres would merge",
      () =>
        Effect.gen(function* () {
          const es = yield* EventStore.EventStore
          const category = `c${unique()}`
          // A lone surrogate is stored by Postgres as U+FFFD, so these would all become one stream there.
          const names = [
            `${category}-\ud800`,
            `${category}-\udbff`,
            `${category}-\udc00`,
            `${category}-a\ud800b`,
            `${category}-\udc00\ud800`,
            `${category}-\ud83d`,
            `${category}\ud800-1`
          ]
          for (const name of names) {
            const append = yield* Effect.flip(
              es.append(name, [{ type: "A", data: {} }], { expected: ExpectedVersion.NoStream })
            )
            assert.strictEqual(append._tag, "InvalidStreamName", JSON.stringify(name))
            assert.strictEqual(append._tag === "InvalidStreamName" && append.stream, name)
            assert.match(append.message, /not well-formed Unicode/)
            const read = yield* Effect.flip(Stream.runDrain(es.readStream(name)))
            assert.strictEqual(read._tag, "InvalidStreamName", JSON.stringify(name))
            const version = yield* Effect.flip(es.streamVersion(name))
            assert.strictEqual(version._tag, "InvalidStreamName", JSON.stringify(name))
          }
          for (const bad of ["\ud800", `${category}\udfff`, "\udc00\ud800"]) {
            const read = yield* Effect.flip(Stream.runDrain(es.readCategories([category, bad])))
            assert.strictEqual(read._tag, "InvalidStreamName", JSON.stringify(bad))
            assert.strictEqual(read._tag === "InvalidStreamName" && read.stream, bad)
          }
          assert.deepStrictEqual(yield* collect(es.readCategories([category])), [])
          // Well-formed text outside the BMP (a surrogate pair) is a name like any other.
          const emoji = `${category}-😀`
          yield* es.append(emoji, [{ type: "A", data: {} }], { expected: ExpectedVersion.NoStream })
          assert.deepStrictEqual(
            (yield* collect(es.readStream(emoji))).map((e) => e.stream),
            [emoji]
          )
          assert.strictEqual(yield* es.streamVersion(`${category}-😁`), 0)
        }),
      timeout
    )

    it.effect(
      "refuses malformed categories in a category read, before any I/O",
      () =>
        Effect.gen(function* () {
          const es = yield* EventStore.EventStore
          const categories: ReadonlyArray<unknown> = [
            "",
            "not a category",
            "a-b",
            "ca'te",
            "c\u0000",
            "x".repeat(StreamName.maxLength),
            5,
            null
          ]
          for (const bad of categories) {
            const read = yield* Effect.flip(Stream.runDrain(es.readCategories(["valid", bad as string])))
            assert.strictEqual(read._tag, "InvalidStreamName", String(bad))
          }
          const notAnArray = yield* Effect.flip(Stream.runDrain(es.readCategories("abc" as unknown as Array<string>)))
          assert.strictEqual(notAnArray._tag, "InvalidReadOptions")
        }),
      timeout
    )

    it.effect(
      "refuses malformed read options with InvalidReadOptions naming the option, before any I/O",
      () =>
        Effect.gen(function* () {
          const es = yield* EventStore.EventStore
          const stream = freshStream()
          yield* es.append(stream, [
            { type: "A", data: 1 },
            { type: "B", data: 2 }
          ])
          const category = stream.slice(0, stream.indexOf("-"))
          const counts: ReadonlyArray<unknown> = [
            Number.NaN,
            -1,
            1.5,
            2 ** 40,
            EventStore.maxReadNumber + 1,
            Number.POSITIVE_INFINITY,
            Number.NEGATIVE_INFINITY,
            "3",
            3n,
            null
          ]
          for (const value of counts) {
            for (const option of ["from", "limit", "batchSize"]) {
              const options = { [option]: value } as EventStore.ReadStreamOptions
              const label = `${option} = ${String(value)}`
              yield* refused(label, es.readStream(stream, options), option, "readStream")
              yield* refused(
                `backward ${label}`,
                es.readStream(stream, { ...options, direction: "backward" }),
                option,
                "readStream"
              )
              if (option === "from") continue
              yield* refused(label, es.readAll(options as EventStore.ReadLogOptions), option, "readAll")
              yield* refused(
                label,
                es.readCategories([category], options as EventStore.ReadLogOptions),
                option,
                "readCategories"
              )
            }
          }
          yield* refused("batchSize = 0", es.readStream(stream, { batchSize: 0 }), "batchSize", "readStream")
          yield* refused("batchSize = 0", es.readAll({ batchSize: 0 }), "batchSize", "readAll")
          const direction = { direction: "sideways" } as unknown as EventStore.ReadStreamOptions
          yield* refused("direction", es.readStream(stream, direction), "direction", "readStream")
          for (const after of [2n ** 70n, EventStore.maxPosition + 1n, -1n, 5, Number.NaN, "5", null]) {
            const options = { after } as unknown as EventStore.ReadLogOptions
            yield* refused(`after = ${String(after)}`, es.readAll(options), "after", "readAll")
            yield* refused(
              `after = ${String(after)}`,
              es.readCategories([category], options),
              "after",
              "readCategories"
            )
          }
          for (const options of [null, 5, "forward"]) {
            const label = `options ${String(options)}`
            yield* refused(label, es.readStream(stream, options as never), "options", "readStream")
            yield* refused(label, es.readAll(options as never), "options", "readAll")
          }
          const message = yield* Effect.flip(Stream.runDrain(es.readAll({ after: 2n ** 70n })))
          assert.strictEqual(
            message.message,
            "Invalid readAll option after = 1180591620717411303424n: it must be a bigint from 0n to 9223372036854775807n"
          )
          // A bad stream name is reported before bad options.
          const both = yield* Effect.flip(Stream.runDrain(es.readStream("nodash", { limit: -1 })))
          assert.strictEqual(both._tag, "InvalidStreamName")

          // The edges of each range are accepted, and read what they say.
          const versions = (options: EventStore.ReadStreamOptions) =>
            Effect.map(collect(es.readStream(stream, options)), (events) => events.map((e) => e.streamVersion))
          assert.deepStrictEqual(yield* versions({ from: 0 }), [1, 2])
          assert.deepStrictEqual(yield* versions({ from: 0, direction: "backward" }), [])
          assert.deepStrictEqual(yield* versions({ from: EventStore.maxReadNumber }), [])
          assert.deepStrictEqual(yield* versions({ from: EventStore.maxReadNumber, direction: "backward" }), [2, 1])
          assert.deepStrictEqual(yield* versions({ limit: 0 }), [])
          assert.deepStrictEqual(yield* versions({ limit: EventStore.maxReadNumber, batchSize: 1 }), [1, 2])
          assert.deepStrictEqual(yield* versions({ batchSize: EventStore.maxReadNumber }), [1, 2])
          assert.deepStrictEqual(yield* collect(es.readAll({ after: EventStore.maxPosition })), [])
          assert.deepStrictEqual(yield* collect(es.readCategories([category], { after: EventStore.maxPosition })), [])
          assert.strictEqual(
            (yield* collect(es.readCategories([category], { after: 0n, batchSize: EventStore.maxReadNumber }))).length,
            2
          )
        }),
      timeout
    )

    it.effect(
      "refuses expected: null and every other malformed expectation, writing nothing",
      () =>
        Effect.gen(function* () {
          const es = yield* EventStore.EventStore
          const stream = freshStream()
          const malformed: ReadonlyArray<unknown> = [
            null,
            {},
            [],
            "Any",
            0,
            { _tag: "any" },
            { _tag: "Exact" },
            { _tag: "Exact", version: -1 },
            { _tag: "Exact", version: 1.5 },
            { _tag: "Exact", version: Number.NaN },
            { _tag: "Exact", version: "0" },
            { _tag: "Exact", version: 0n },
            { _tag: "Exact", version: 2 ** 53 },
            { _tag: "Any", version: 3 },
            { _tag: "NoStream", version: 0 },
            { _tag: "Exact", version: 0, extra: true }
          ]
          for (const expected of malformed) {
            for (const events of [[{ type: "A", data: {} }], []]) {
              const options = { expected } as unknown as EventStore.AppendOptions
              const error = yield* Effect.flip(es.append(stream, events, options))
              const label = `${Inspectable.toStringUnknown(expected)} with ${events.length} events`
              assert.strictEqual(error._tag, "InvalidEvent", label)
              assert.strictEqual(error._tag === "InvalidEvent" && error.index, -1, label)
            }
          }
          for (const options of [null, 5, "NoStream"]) {
            const error = yield* Effect.flip(es.append(stream, [{ type: "A", data: {} }], options as never))
            assert.strictEqual(error._tag === "InvalidEvent" && error.index, -1, String(options))
          }
          assert.strictEqual(yield* es.streamVersion(stream), 0)
          // An expectation left out (or undefined) is Any, and the well-formed ones still work.
          assert.strictEqual((yield* es.append(stream, [{ type: "A", data: {} }], { expected: undefined })).version, 1)
          assert.strictEqual((yield* es.append(stream, [{ type: "A", data: {} }], {})).version, 2)
          const exact = yield* es.append(stream, [{ type: "A", data: {} }], { expected: { _tag: "Exact", version: 2 } })
          assert.strictEqual(exact.version, 3)
          const far = yield* Effect.flip(es.append(stream, [], { expected: ExpectedVersion.Exact(2 ** 40) }))
          assert.strictEqual(far._tag, "WrongExpectedVersion")
        }),
      timeout
    )

    it.effect(
      "a command handler refuses a stream name that is not well-formed Unicode, before any I/O",
      () =>
        Effect.gen(function* () {
          const es = yield* EventStore.EventStore
          let reads = 0
          const counting = EventStore.EventStore.of({
            ...es,
            readStream: (stream, options) => {
              reads++
              return es.readStream(stream, options)
            }
          })
          const handler = yield* CommandHandler.make({ decider: counter, codec: counterCodec }).pipe(
            Effect.provideService(EventStore.EventStore, counting)
          )
          const category = `c${unique()}`
          for (const name of [`${category}-\ud800`, `${category}-\udbff`]) {
            const handled = yield* Effect.flip(handler.handle(name, { _tag: "Add" }))
            assert.strictEqual(handled._tag, "InvalidStreamName", JSON.stringify(name))
            const loaded = yield* Effect.flip(handler.load(name))
            assert.strictEqual(loaded._tag, "InvalidStreamName", JSON.stringify(name))
          }
          assert.strictEqual(reads, 0)
          assert.deepStrictEqual(yield* collect(es.readCategories([category])), [])
        }),
      timeout
    )

    it.effect(
      "stores hostile stream ids and payloads and reads them back exactly",
      () =>
        Effect.gen(function* () {
          const es = yield* EventStore.EventStore
          const category = `c${unique()}`
          const ids = [
            `'; drop table evently_events; --${unique()}`,
            `"quoted" $1 ? %s ${unique()}`,
            `emoji 😀🎉 ünïcødé ${unique()}`,
            `a-b-c-${unique()}`,
            `${"long".repeat(100)}${unique()}`
          ]
          const payloads: ReadonlyArray<unknown> = [
            { sql: "'; drop table evently_events; --", quote: "'", dq: '"', backslash: "\\", dollar: "$1", q: "?" },
            JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": 1}, "toString": "x"}'),
            { big: "é😀".repeat(200_000), emoji: "👩‍👩‍👧‍👦", rtl: "\u202eabc", ctl: "\u0001\u001f\n\t\r" },
            nested(EventStore.maxDepth - 1),
            ["", 0, -1.25e-300, 1.7976931348623157e308, Number.MAX_SAFE_INTEGER, true, false, null, [], {}],
            { "": "empty key", "key with spaces": 1, "--": 2, "'": 3, "\\u0000": "escaped text, not NUL" },
            "x".repeat(1024 * 1024)
          ]
          for (const id of ids) {
            const stream = `${category}-${id}`
            yield* es.append(
              stream,
              payloads.map((data, i) => ({ type: `T'${i}--;`, data, metadata: { headers: { "x'--": id } } })),
              { expected: ExpectedVersion.NoStream }
            )
            const events = yield* collect(es.readStream(stream))
            assert.strictEqual(events.length, payloads.length)
            events.forEach((event, i) => {
              assert.strictEqual(event.stream, stream)
              assert.strictEqual(event.category, category)
              assert.strictEqual(event.type, `T'${i}--;`)
              assert.deepStrictEqual(event.data, payloads[i])
              assert.deepStrictEqual(event.metadata, { headers: { "x'--": id } })
            })
            assert.isTrue(Object.hasOwn(events[1]!.data as object, "__proto__"))
            assert.strictEqual(({} as Record<string, unknown>).polluted, undefined)
          }
          const all = yield* collect(es.readCategories([category]))
          assert.strictEqual(all.length, ids.length * payloads.length)
        }),
      timeout
    )

    it.effect(
      "re-appending the same batch returns the first result; other content under an id is a conflict",
      () =>
        Effect.gen(function* () {
          const es = yield* EventStore.EventStore
          const stream = freshStream()
          const batch = [
            { type: "A", data: { x: 1, y: [1, 2] }, eventId: uuid() },
            { type: "B", data: { z: "z" }, eventId: uuid() }
          ]
          const first = yield* es.append(stream, batch, { expected: ExpectedVersion.NoStream })
          // A retry with the same (now stale) expectation, and keys in another order, is the same append.
          const retried = yield* es.append(
            stream,
            [{ ...batch[0]!, data: { y: [1, 2], x: 1 }, eventId: batch[0]!.eventId.toUpperCase() }, batch[1]!],
            { expected: ExpectedVersion.NoStream }
          )
          assert.deepStrictEqual(retried, first)
          yield* es.append(stream, [{ type: "C", data: {} }])
          assert.deepStrictEqual(yield* es.append(stream, batch, { expected: ExpectedVersion.Exact(0) }), first)
          assert.strictEqual(yield* es.streamVersion(stream), 3)

          const conflicts: ReadonlyArray<readonly [string, string, ReadonlyArray<EventStore.NewEvent>]> = [
            ["other data", stream, [batch[0]!, { ...batch[1]!, data: { z: "other" } }]],
            ["other type", stream, [batch[0]!, { ...batch[1]!, type: "Other" }]],
            ["other schema version", stream, [batch[0]!, { ...batch[1]!, schemaVersion: 2 }]],
            ["other stream", freshStream(), batch],
            ["other order", stream, [batch[1]!, batch[0]!]],
            ["part of the batch", stream, [batch[1]!]],
            ["with a new event", stream, [...batch, { type: "New", data: {}, eventId: uuid() }]]
          ]
          for (const [label, target, events] of conflicts) {
            const error = yield* Effect.flip(es.append(target, events))
            assert.strictEqual(error._tag, "EventIdConflict", label)
          }
          assert.strictEqual(yield* es.streamVersion(stream), 3)
          assert.strictEqual(yield* es.streamVersion(conflicts[3]![1]), 0)
        }),
      timeout
    )

    it.effect(
      "concurrent retries of the same batch all get the first append's result",
      () =>
        Effect.gen(function* () {
          const es = yield* EventStore.EventStore
          for (const expected of [ExpectedVersion.NoStream, ExpectedVersion.Any, ExpectedVersion.Exact(0)]) {
            const stream = freshStream()
            const batch = [
              { type: "A", data: { n: 1 }, eventId: uuid() },
              { type: "B", data: { n: 2 }, eventId: uuid() }
            ]
            const results = yield* Effect.all(
              Array.from({ length: 12 }, () => es.append(stream, batch, { expected })),
              { concurrency: "unbounded" }
            )
            for (const result of results) assert.deepStrictEqual(result, results[0])
            assert.strictEqual(results[0]!.version, 2)
            assert.strictEqual(yield* es.streamVersion(stream), 2)
          }
        }),
      timeout
    )

    it.effect(
      "reads one stream forward, backward, from a version, with a limit, in pages",
      () =>
        Effect.gen(function* () {
          const es = yield* EventStore.EventStore
          const stream = freshStream()
          yield* es.append(
            stream,
            Array.from({ length: 10 }, (_, i) => ({ type: "N", data: i }))
          )
          yield* es.append(freshStream(), [{ type: "Other", data: null }])
          const versions = (options?: EventStore.ReadStreamOptions) =>
            Effect.map(collect(es.readStream(stream, options)), (events) => events.map((e) => e.streamVersion))
          assert.deepStrictEqual(yield* versions(), range(1, 10))
          assert.deepStrictEqual(yield* versions({ batchSize: 3 }), range(1, 10))
          assert.deepStrictEqual(yield* versions({ from: 4, batchSize: 2 }), range(4, 10))
          assert.deepStrictEqual(yield* versions({ from: 4, limit: 5, batchSize: 2 }), range(4, 8))
          assert.deepStrictEqual(yield* versions({ limit: 0 }), [])
          assert.deepStrictEqual(yield* versions({ from: 11 }), [])
          assert.deepStrictEqual(yield* versions({ direction: "backward" }), range(10, 1))
          assert.deepStrictEqual(yield* versions({ direction: "backward", batchSize: 3 }), range(10, 1))
          assert.deepStrictEqual(yield* versions({ direction: "backward", from: 6, batchSize: 4 }), range(6, 1))
          assert.deepStrictEqual(yield* versions({ direction: "backward", from: 6, limit: 3 }), range(6, 4))
          assert.deepStrictEqual(yield* versions({ direction: "backward", from: 50, limit: 2 }), range(10, 9))
          assert.deepStrictEqual(yield* Effect.map(collect(es.readStream(freshStream())), (events) => events.length), 0)
        }),
      timeout
    )

    it.effect(
      "reads categories and the whole log in position order, after a position, with a limit",
      () =>
        Effect.gen(function* () {
          const es = yield* EventStore.EventStore
          const [a, b, c] = [`a${unique()}`, `b${unique()}`, `c${unique()}`]
          const marker = yield* es.append(freshStream(), [{ type: "Marker", data: null }])
          const written: Array<readonly [string, bigint]> = []
          for (let i = 0; i < 12; i++) {
            const category = [a, b, c][i % 3]!
            const result = yield* es.append(`${category}-${i % 2}`, [{ type: "E", data: i }])
            written.push([category, result.positions[0]!])
          }
          const of = (...categories: ReadonlyArray<string>) =>
            written.filter(([category]) => categories.includes(category)).map(([, position]) => position)

          assert.deepStrictEqual(positions(yield* collect(es.readCategories([a]))), of(a))
          assert.deepStrictEqual(positions(yield* collect(es.readCategories([a, c], { batchSize: 2 }))), of(a, c))
          assert.deepStrictEqual(positions(yield* collect(es.readCategories([c, a, a]))), of(a, c))
          const ab = of(a, b)
          assert.deepStrictEqual(
            positions(yield* collect(es.readCategories([a, b], { after: ab[2]!, limit: 3, batchSize: 2 }))),
            ab.slice(3, 6)
          )
          assert.deepStrictEqual(yield* collect(es.readCategories([])), [])
          assert.deepStrictEqual(yield* collect(es.readCategories([`z${unique()}`])), [])
          const all = yield* collect(es.readAll({ after: marker.positions[0]!, batchSize: 5 }))
          assert.deepStrictEqual(
            positions(all),
            written.map(([, position]) => position)
          )
          assert.deepStrictEqual(
            all.map((e) => e.data),
            Array.from({ length: 12 }, (_, i) => i)
          )
          assert.deepStrictEqual(
            positions(yield* collect(es.readAll({ after: marker.positions[0]!, limit: 4, batchSize: 3 }))),
            written.slice(0, 4).map(([, position]) => position)
          )
        }),
      timeout
    )

    it.effect(
      "a 10,000-event stream reads back in order through the Stream, page by page",
      () =>
        Effect.gen(function* () {
          const es = yield* EventStore.EventStore
          const stream = freshStream()
          const total = 10_000
          for (let start = 0; start < total; start += 2_000) {
            yield* es.append(
              stream,
              Array.from({ length: 2_000 }, (_, i) => ({ type: "Tick", data: { i: start + i } })),
              { expected: ExpectedVersion.Exact(start) }
            )
          }
          const fold = (options: EventStore.ReadStreamOptions, step: number, first: number) =>
            Stream.runFold(
              es.readStream(stream, options),
              () => ({ count: 0, next: first, ordered: true }),
              (state, event) => ({
                count: state.count + 1,
                next: state.next + step,
                ordered:
                  state.ordered &&
                  event.streamVersion === state.next &&
                  (event.data as { i: number }).i === state.next - 1
              })
            )
          assert.deepStrictEqual(yield* fold({ batchSize: 333 }, 1, 1), {
            count: total,
            next: total + 1,
            ordered: true
          })
          assert.deepStrictEqual(yield* fold({ direction: "backward", batchSize: 1_000 }, -1, total), {
            count: total,
            next: 0,
            ordered: true
          })
          // A read can be cut short: the consumer takes what it needs.
          const head = yield* collect(Stream.take(es.readStream(stream, { batchSize: 10 }), 25))
          assert.deepStrictEqual(
            head.map((e) => e.streamVersion),
            Array.from({ length: 25 }, (_, i) => i + 1)
          )
        }),
      timeout
    )
  })
