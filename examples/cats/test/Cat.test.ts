import { assert, describe, it } from "@effect/vitest"
import * as Cat from "../src/Cat.ts"

describe("Cat", () => {
  it("folds a cat's events and picks the next one from its version", () => {
    const events = [0, 1, 2, 3].map((version) => Cat.next("tom", version))
    assert.deepStrictEqual(events, [
      { _tag: "Adopted", name: "tom" },
      { _tag: "Fed", food: "tuna" },
      { _tag: "Napped", minutes: 20 },
      { _tag: "Fed", food: "chicken" }
    ])
    const cat = [...events, { _tag: "Renamed", name: "thomas" } as const].reduce(Cat.evolve, Cat.initial)
    assert.deepStrictEqual(cat, { name: "thomas", meals: ["tuna", "chicken"], napMinutes: 20 })
    assert.strictEqual(Cat.describe(cat), "thomas, 2 meal(s) (last: chicken), 20 minute(s) of naps")
    assert.strictEqual(Cat.describe(Cat.initial), "not adopted yet")
  })
})
