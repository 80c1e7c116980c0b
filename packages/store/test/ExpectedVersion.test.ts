import { assert, describe, it } from "@effect/vitest"
import { ExpectedVersion } from "@evently/store"

describe("ExpectedVersion", () => {
  it("problem accepts the four expectations and nothing else", () => {
    for (const expected of [
      ExpectedVersion.Any,
      ExpectedVersion.NoStream,
      ExpectedVersion.StreamExists,
      ExpectedVersion.Exact(0),
      ExpectedVersion.Exact(2 ** 40)
    ]) {
      assert.strictEqual(ExpectedVersion.problem(expected), undefined, ExpectedVersion.format(expected))
    }
    assert.strictEqual(
      ExpectedVersion.problem(null),
      "the expected version is null, not Any, NoStream, StreamExists or Exact(n)"
    )
    assert.strictEqual(
      ExpectedVersion.problem({ _tag: "any" }),
      `the expected version's _tag is "any", not Any, NoStream, StreamExists or Exact`
    )
    assert.strictEqual(
      ExpectedVersion.problem({ _tag: "Any", version: 3 }),
      "the expected version Any has a key version it does not take"
    )
    assert.strictEqual(
      ExpectedVersion.problem({ _tag: "Exact", version: 1.5 }),
      "the expected version: Exact needs a version that is an integer from 0 to 9007199254740991, not 1.5"
    )
    assert.match(ExpectedVersion.problem({ _tag: "Exact" })!, /not undefined$/)
    assert.match(ExpectedVersion.problem({ _tag: "Exact", version: 1n })!, /not 1n$/)
    assert.match(ExpectedVersion.problem([])!, /is an array/)
  })
})
