import { assert, describe, it } from "@effect/vitest"
import { Accumulate } from "@evently/machine"

const { current, keep, union, alias, addition, difference, compose, apply } = Accumulate
const run = (accumulate: Accumulate.Accumulate<string>, ...tags: Array<string>) =>
  [...apply(accumulate, "E", new Set(tags))].sort()

describe("Accumulate", () => {
  it("current makes the state {tag}", () => assert.deepStrictEqual(run(current(), "A", "B"), ["E"]))
  it("keep leaves it as it was", () => assert.deepStrictEqual(run(keep(), "A", "B"), ["A", "B"]))
  it("union adds the tag", () => assert.deepStrictEqual(run(union(), "A"), ["A", "E"]))
  it("alias makes it {X}", () => assert.deepStrictEqual(run(alias("X"), "A", "B"), ["X"]))
  it("addition adds named tags, not the event's own", () =>
    assert.deepStrictEqual(run(addition("X", "Y"), "A"), ["A", "X", "Y"]))
  it("difference removes named tags, not adding the event's own", () =>
    assert.deepStrictEqual(run(difference("A", "Z"), "A", "B"), ["B"]))
  it("compose chains left to right", () => {
    assert.deepStrictEqual(run(compose(union(), difference("A")), "A", "B"), ["B", "E"])
    assert.deepStrictEqual(run(compose(difference("A"), union()), "A", "B"), ["B", "E"])
    assert.deepStrictEqual(run(compose(alias("X"), addition("Y")), "A"), ["X", "Y"])
    assert.strictEqual(Accumulate.format(compose(union(), difference("A"))), 'compose(union(), difference("A"))')
  })
})
