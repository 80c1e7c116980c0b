import { assert, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import { EventStore } from "@evently/store"
import * as Effect from "effect/Effect"
import { program } from "../examples/commands.ts"

it.effect("the commands guide's example runs", () =>
  Effect.gen(function* () {
    const result = yield* program
    assert.deepStrictEqual(result, {
      versions: [1, 1, 2],
      duplicate: true,
      state: ["Started"],
      refused: "Event type 'Created' may not follow [Started]"
    })
  }).pipe(Effect.provide(EventStore.layerMemory))
)

it("the commands guide shows exactly examples/commands.ts", () => {
  const readme = readFileSync(new URL("../../../docs/commands.md", import.meta.url), "utf8")
  const example = readFileSync(new URL("../examples/commands.ts", import.meta.url), "utf8")
  assert.include(readme, `\`\`\`ts\n${example}\`\`\``)
})
