import { assert, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import { EventStore } from "@evently/store"
import * as Effect from "effect/Effect"
import { program } from "../examples/quickstart.ts"

it.effect("the store guide's quick start runs", () =>
  Effect.gen(function* () {
    const result = yield* program
    assert.deepStrictEqual(result.events, [
      [1, { _tag: "Created", title: "Ship the store" }],
      [2, { _tag: "Completed" }]
    ])
    assert.strictEqual(result.stale, "Stream 'task-42' expected version 1 but is at version 2")
  }).pipe(Effect.provide(EventStore.layerMemory))
)

it("the store guide shows exactly examples/quickstart.ts", () => {
  const readme = readFileSync(new URL("../../../docs/store.md", import.meta.url), "utf8")
  const example = readFileSync(new URL("../examples/quickstart.ts", import.meta.url), "utf8")
  assert.include(readme, `\`\`\`ts\n${example}\`\`\``)
})
