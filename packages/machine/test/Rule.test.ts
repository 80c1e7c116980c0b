import { assert, describe, it } from "@effect/vitest"
import { Rule } from "@evently/machine"

const { event, nothing, allOf, anyOf, butNot, holds, isInitial } = Rule
const state = (...tags: Array<string>) => new Set(tags)

describe("Rule", () => {
  it("event holds when the tag is in the state", () => {
    assert.isTrue(holds(event("A"), state("A", "B")))
    assert.isFalse(holds(event("C"), state("A", "B")))
  })

  it("nothing holds on an empty control state (as microcosm's `not state`), and only there", () => {
    assert.isTrue(holds(nothing(), state()))
    assert.isFalse(holds(nothing(), state("A")))
  })

  it("allOf, anyOf and butNot combine, bare tags meaning event(tag)", () => {
    const rule = allOf("Created", butNot("Assigned"))
    assert.isTrue(holds(rule, state("Created")))
    assert.isFalse(holds(rule, state("Created", "Assigned")))
    assert.isTrue(holds(anyOf("A", "B"), state("B")))
    assert.isFalse(holds(anyOf("A", "B"), state("C")))
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

  it("a named predicate is evaluated on the tags, counts for initial-ness, and shows by its name", () => {
    const crowded = Rule.predicate("crowded", (tags) => tags.size >= 2)
    assert.isTrue(holds(crowded, state("A", "B")))
    assert.isFalse(holds(crowded, state("A")))
    assert.isFalse(isInitial(crowded))
    assert.isTrue(isInitial(anyOf(nothing(), crowded)))
    const rule = allOf("A", butNot(crowded))
    assert.isTrue(holds(rule, state("A")))
    assert.isFalse(holds(rule, state("A", "B")))
    assert.strictEqual(Rule.format(rule), 'allOf(event("A"), butNot(predicate("crowded")))')
    assert.deepStrictEqual(
      Rule.predicateNames(
        anyOf(
          crowded,
          allOf(
            "A",
            Rule.predicate("odd", () => true)
          )
        )
      ),
      ["crowded", "odd"]
    )
  })
})
