import { assert, describe, it } from "@effect/vitest"
import { StreamName } from "@evently/store"
import * as Effect from "effect/Effect"

describe("StreamName", () => {
  it("refuses names that are not well-formed Unicode, saying where the lone surrogate is", () => {
    assert.strictEqual(
      StreamName.problem("cat-\ud800"),
      "it is not well-formed Unicode: a lone UTF-16 surrogate (U+D800) at index 4"
    )
    assert.strictEqual(
      StreamName.problem("cat-a😀\udbff"),
      "it is not well-formed Unicode: a lone UTF-16 surrogate (U+DBFF) at index 7"
    )
    assert.match(StreamName.problem("cat-\udc00x")!, /U\+DC00\) at index 4$/)
    assert.match(StreamName.problem("c\ud800-1")!, /not well-formed Unicode/)
    // Postgres would store both as U+FFFD: they must not both be accepted as different streams.
    assert.isFalse(StreamName.is("cat-\ud800"))
    assert.isFalse(StreamName.is("cat-\udbff"))
    assert.isTrue(StreamName.is("cat-😀"))
    assert.isTrue(StreamName.is("cat-\ufffd"))
  })

  it("textProblem is the shared check for any name: a string, no NUL, well-formed", () => {
    assert.strictEqual(StreamName.textProblem("any name at all, even with spaces"), undefined)
    assert.strictEqual(StreamName.textProblem("sub\u0000name"), "it contains a NUL character")
    assert.match(StreamName.textProblem("sub\udfffname")!, /lone UTF-16 surrogate \(U\+DFFF\) at index 3/)
    assert.strictEqual(StreamName.textProblem(5), "it is not a string but number")
    assert.strictEqual(StreamName.textProblem(null), "it is not a string but null")
    assert.strictEqual(StreamName.problem(undefined as unknown as string), "it is not a string but undefined")
  })

  it("checks categories the way stream names check theirs", () => {
    assert.strictEqual(StreamName.categoryProblem("task_2"), undefined)
    assert.strictEqual(StreamName.categoryProblem(""), "it is empty")
    assert.strictEqual(StreamName.categoryProblem("a-b"), "it may hold only letters, digits and '_'")
    assert.strictEqual(StreamName.categoryProblem("x".repeat(StreamName.maxLength - 2)), undefined)
    assert.match(StreamName.categoryProblem("x".repeat(StreamName.maxLength - 1))!, /longer than 510/)
    assert.match(StreamName.categoryProblem("\ud800")!, /not well-formed Unicode/)
    assert.isFalse(StreamName.isCategory("\ud800"))
    assert.isTrue(StreamName.isCategory("task"))
  })

  it.effect("parseCategory fails with InvalidStreamName naming the category", () =>
    Effect.gen(function* () {
      assert.strictEqual(yield* StreamName.parseCategory("task"), "task")
      const error = yield* Effect.flip(StreamName.parseCategory("not a category"))
      assert.strictEqual(error._tag, "InvalidStreamName")
      assert.strictEqual(error.stream, "not a category")
      assert.strictEqual(
        error.message,
        `Invalid stream name "not a category": as a category, it may hold only letters, digits and '_'`
      )
    })
  )
})
