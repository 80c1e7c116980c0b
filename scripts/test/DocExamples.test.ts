/**
 * The code examples in the JSDoc of the libraries (what `pnpm run docs` puts in the API reference): every one is a
 * complete program (it imports what it uses) that typechecks, strict, against the packages; an example that is not
 * fails, named by its file and line. See `scripts/docs.ts`.
 */
import { assert, describe, it } from "vitest"
import { checkExamples, examples, examplesIn } from "../docs.ts"

/** A source file's text with a JSDoc comment of the given lines. */
const source = (...lines: ReadonlyArray<string>) =>
  ["/**", ...lines.map((line) => ` *${line === "" ? "" : ` ${line}`}`), " */", "export const x = 1", ""].join("\n")

describe("the API reference's code examples", () => {
  it("are all complete programs that typecheck", () => {
    const found = examples()
    assert.isAbove(found.examples.length, 0, "the JSDoc has code examples")
    assert.strictEqual(checkExamples(found), "")
  }, 300_000)

  it("an example without imports fails, named by its file and line", () => {
    const found = examplesIn("packages/a/src/A.ts", source("Adds one.", "", "```ts", "const y = x + 1", "```"))
    assert.deepStrictEqual(
      found.examples.map((example) => [example.location, example.complete]),
      [["packages/a/src/A.ts:5", false]]
    )
    const report = checkExamples(found)
    assert.include(report, "packages/a/src/A.ts:5: this code example has no import")
  })

  it("a bare fence and ```typescript are examples too; other languages are not", () => {
    const found = examplesIn(
      "packages/a/src/A.ts",
      source("```", "x + 1", "```", "```typescript", "x + 2", "```", "```sh", "pnpm test", "```")
    )
    assert.deepStrictEqual(
      found.problems.map((problem) => problem.location),
      ["packages/a/src/A.ts:3", "packages/a/src/A.ts:6"]
    )
  })

  it("an @example without a fenced block fails, named by its file and line", () => {
    const found = examplesIn("packages/a/src/A.ts", source("Adds one.", "@example", "x + 1", "@since 0.1.0"))
    assert.strictEqual(
      checkExamples(found),
      "packages/a/src/A.ts:3: this @example is not followed by a fenced ```ts block, so its code cannot be typechecked"
    )
  })

  it("an @example followed by a complete program is checked as one", () => {
    const found = examplesIn(
      "packages/a/src/A.ts",
      source("@example", "```ts", 'import * as Effect from "effect/Effect"', "Effect.succeed(1)", "```")
    )
    assert.deepStrictEqual(found.problems, [])
    assert.deepStrictEqual(
      found.examples.map((example) => [example.location, example.complete]),
      [["packages/a/src/A.ts:4", true]]
    )
  })
})
