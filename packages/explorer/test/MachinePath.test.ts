import * as Graph from "@evently/machine/Graph"
import { assert, describe, it } from "@effect/vitest"
import * as MachinePath from "../src/MachinePath.ts"
import { TaskMachine } from "./seed.ts"

const graph = Graph.make(TaskMachine)

describe("MachinePath.follow", () => {
  it("counts each transition taken and ends where the last event leads, with the events allowed there", () => {
    const path = MachinePath.follow(graph, ["Created", "Started", "Paused", "Started", "Paused", "Started"])
    assert.deepStrictEqual(path.states, ["*", "[Created]", "[Started]", "[Paused]"])
    assert.deepStrictEqual(path.transitions, [
      { key: "* --Created--> [Created]", count: 1 },
      { key: "[Created] --Started--> [Started]", count: 1 },
      { key: "[Started] --Paused--> [Paused]", count: 2 },
      { key: "[Paused] --Started--> [Started]", count: 2 }
    ])
    assert.strictEqual(path.current, "[Started]")
    assert.deepStrictEqual(path.allowed, ["Paused", "Completed"])
    assert.isUndefined(path.unmatched)
  })

  it("stops at the first event the graph has no transition for, naming its version and type", () => {
    const path = MachinePath.follow(graph, ["Created", "Completed", "Started"])
    assert.deepStrictEqual(path.unmatched, { version: 2, type: "Completed" })
    assert.strictEqual(path.current, "[Created]")
    assert.deepStrictEqual(path.allowed, ["Started"])
  })

  it("an empty stream stands in the empty state, where the initial events are allowed", () => {
    const path = MachinePath.follow(graph, [])
    assert.deepStrictEqual(path, {
      states: ["*"],
      transitions: [],
      current: "*",
      allowed: ["Created"],
      unmatched: undefined
    })
  })
})
