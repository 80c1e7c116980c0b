import { assert, it } from "@effect/vitest"
import { readFileSync } from "node:fs"

const body = (path: string) => {
  const text = readFileSync(new URL(path, import.meta.url), "utf8")
  return text.slice(text.search(/^import /m))
}

it("the test's task machine is the example's, rule for rule", () => {
  assert.strictEqual(body("./TaskMachine.ts"), body("../../../examples/task-list/src/TaskMachine.ts"))
})
