/**
 * The code examples in the JSDoc of the libraries (what `pnpm docs` puts in the API reference): every complete one
 * (it imports what it uses) typechecks, strict, against the packages. See `scripts/docs.ts`.
 */
import { assert, describe, it } from "vitest"
import { checkExamples, examples } from "../docs.ts"

describe("the API reference's code examples", () => {
  it("typecheck", () => {
    const list = examples()
    assert.isAbove(list.length, 0, "the JSDoc has code examples")
    assert.strictEqual(checkExamples(list), "")
  }, 300_000)
})
