import { assert, describe, it } from "@effect/vitest"
import { Rule } from "@evently/machine"

const { event, nothing, allOf, anyOf, butNot, holds, isInitial } = Rule
const state = (...tags: Array<string>) => new Set(tags)

describe("Rule", () => {
  it("event holds when the tag is in the state", () => {
    assert.isTrue(holds(event("A"), state("A", "B"), false))
    assert.isFalse(holds(event("C"), state("A", "B"), false))
  })

  it("nothing holds only on an empty history, not on an emptied state", () => {
    assert.isTrue(holds(nothing(), state(), true))
    assert.isFalse(holds(nothing(), state(), false))
    assert.isFalse(holds(nothing(), state("A"), false))
  })

  it("allOf, anyOf and butNot combine, bare tags meaning event(tag)", () => {
    const rule = allOf("Created", butNot("Assigned"))
    assert.isTrue(holds(rule, state("Created"), false))
    assert.isFalse(holds(rule, state("Created", "Assigned"), false))
    assert.isTrue(holds(anyOf("A", "B"), state("B"), false))
    assert.isFalse(holds(anyOf("A", "B"), state("C"), false))
    assert.strictEqual(Rule.format(rule), 'allOf(event("Created"), butNot(event("Assigned")))')
  })

  it("initial-ness is semantic: whether the rule holds on an empty history", () => {
    assert.isTrue(isInitial(nothing()))
    assert.isTrue(isInitial(anyOf(nothing(), "X")))
    assert.isFalse(isInitial(allOf(nothing(), "X")))
    assert.isFalse(isInitial(event("X")))
    // microcosm decides this from the syntax; a bare butNot holds on an empty history, so here it is initial
    assert.isTrue(isInitial(butNot("X")))
  })
})
