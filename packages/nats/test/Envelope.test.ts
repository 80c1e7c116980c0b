import { assert, describe, it } from "@effect/vitest"
import { Envelope, Subjects } from "@evently/nats"
import type { EventStore, StreamName } from "@evently/store"
import * as DateTime from "effect/DateTime"

const event = (overrides: Partial<EventStore.RecordedEvent> = {}): EventStore.RecordedEvent => ({
  position: 9_007_199_254_740_993n,
  transactionId: 42n,
  stream: "cat-1" as StreamName.StreamName,
  category: "cat",
  streamVersion: 3,
  eventId: "0b0f5d43-4a59-4bb4-9a52-2b1e9b2f9a11",
  type: "Adopted",
  schemaVersion: 2,
  data: { name: "Tom", tags: ["a", "b"], nested: { n: 1.5 } },
  metadata: { correlationId: "c-1", causationId: "k-1", headers: { tenant: "ünï" } },
  recordedAt: DateTime.makeUnsafe("2026-12-03T19:00:00.123Z"),
  ...overrides
})

const roundTrip = (recorded: EventStore.RecordedEvent) => {
  const message = Envelope.encode(recorded, "evently.cat.Adopted")
  const decoded = Envelope.decode({ subject: message.subject, headers: message.headers, data: message.payload })
  if (decoded._tag === "Failure") throw decoded.failure
  return decoded.success
}

const comparable = (e: EventStore.RecordedEvent) => ({ ...e, recordedAt: DateTime.toEpochMillis(e.recordedAt) })

describe("Envelope", () => {
  it("a recorded event comes back whole: bigints beyond 2^53, metadata with user headers, the recorded time", () => {
    assert.deepStrictEqual(comparable(roundTrip(event())), comparable(event()))
  })

  it("values NATS headers cannot carry as they are (newlines, edge spaces, '%', non-ASCII) come back unchanged", () => {
    const odd = event({
      stream: "cat-a\nb %41 " as StreamName.StreamName,
      type: " Adopted:v2\r\n",
      metadata: { correlationId: "  spaced\u2028", causationId: "ü/€" }
    })
    assert.deepStrictEqual(comparable(roundTrip(odd)), comparable(odd))
    const message = Envelope.encode(odd, "s")
    assert.strictEqual(message.headers.get("Evently-Stream"), encodeURIComponent("cat-a\nb %41 "))
  })

  it("a message without an evently header, or with a body that is not JSON, is an InvalidEnvelope saying which", () => {
    const message = Envelope.encode(event(), "evently.cat.Adopted")
    message.headers.delete("Evently-Position")
    const missing = Envelope.decode({ subject: message.subject, headers: message.headers, data: message.payload })
    assert.strictEqual(missing._tag, "Failure")
    if (missing._tag === "Failure") assert.include(missing.failure.message, "Evently-Position is missing")
    const whole = Envelope.encode(event(), "evently.cat.Adopted")
    const notJson = Envelope.decode({ subject: "x", headers: whole.headers, data: new TextEncoder().encode("{nope") })
    assert.strictEqual(notJson._tag, "Failure")
    if (notJson._tag === "Failure") assert.include(notJson.failure.message, "the body is malformed")
  })
})

describe("Subjects", () => {
  it("the default and microcosm names, with characters a token cannot hold replaced", () => {
    assert.strictEqual(Subjects.byCategoryAndType("p")(event({ type: "Fed.Twice *>" })), "p.cat.Fed_Twice___")
    assert.strictEqual(Subjects.microcosm("p")(event()), "p.created.cat.adopted")
  })

  it("problem refuses what cannot be published to", () => {
    assert.isUndefined(Subjects.problem("a.b.c"))
    assert.include(Subjects.problem("a..b"), "empty token")
    assert.include(Subjects.problem("a.*"), "wildcard")
    assert.include(Subjects.problem("a.>"), "wildcard")
    assert.include(Subjects.problem("a b"), "whitespace")
    assert.include(Subjects.problem(""), "empty")
  })

  it("covers matches wildcards token by token", () => {
    assert.isTrue(Subjects.covers("a.>", "a.b.c"))
    assert.isTrue(Subjects.covers("a.>", "a.>"))
    assert.isTrue(Subjects.covers(">", "a.>"))
    assert.isTrue(Subjects.covers("a.*.c", "a.b.c"))
    assert.isTrue(Subjects.covers("a.*.c", "a.*.c"))
    assert.isFalse(Subjects.covers("a.*", "a.>"))
    assert.isFalse(Subjects.covers("a.>", "a"))
    assert.isFalse(Subjects.covers("a.b", "a.b.c"))
    assert.isFalse(Subjects.covers("b.>", "a.>"))
  })

  it("filter crosses categories and types, '*' for a side not given", () => {
    assert.deepStrictEqual(Subjects.filter({ prefix: "p" }), ["p.*.*"])
    assert.deepStrictEqual(Subjects.filter({ prefix: "p", categories: ["a", "b"], eventTypes: ["X"] }), [
      "p.a.X",
      "p.b.X"
    ])
  })
})
