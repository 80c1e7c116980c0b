import { assert, describe, it } from "@effect/vitest"
import { Accumulate, Machine, Rule } from "@evently/machine"
import * as Schema from "effect/Schema"

const Light = Schema.TaggedUnion({
  Installed: { room: Schema.String },
  SwitchedOn: { brightness: Schema.Number },
  SwitchedOff: {}
})

describe("type-level guarantees (compiled by tsc -b)", () => {
  it("rejects a rule naming a tag that is not in the union, and a requires naming an unknown field", () => {
    const rules = {
      Installed: { follows: Rule.nothing(), requires: ["room"] as const },
      SwitchedOn: { follows: Rule.anyOf("Installed", "SwitchedOff") },
      SwitchedOff: { follows: Rule.event("SwitchedOn") }
    }
    const machine = Machine.make(Light, rules)
    assert.deepStrictEqual(machine.eventTypes, ["Installed", "SwitchedOn", "SwitchedOff"])

    const unknownTag = () =>
      Machine.make(Light, {
        ...rules,
        // @ts-expect-error "Dimmed" is not an event type of the union
        SwitchedOff: { follows: Rule.event("Dimmed") }
      })
    const unknownField = () =>
      Machine.make(Light, {
        ...rules,
        // @ts-expect-error SwitchedOn has no field "colour"
        SwitchedOn: { follows: Rule.event("Installed"), requires: ["colour"] }
      })
    const missingRule = () =>
      // @ts-expect-error every event type needs a rule
      Machine.make(Light, { Installed: rules.Installed, SwitchedOn: rules.SwitchedOn })
    assert.strictEqual(typeof unknownTag, "function")
    assert.strictEqual(typeof unknownField, "function")
    assert.strictEqual(typeof missingRule, "function")

    type Event = Machine.EventOf<typeof machine>
    const event: Event = Light.cases.SwitchedOn.make({ brightness: 3 })
    // @ts-expect-error "Dimmed" is not in the machine's event union
    const wrong: Machine.EventTypeOf<typeof machine> = "Dimmed"
    assert.strictEqual(event._tag, "SwitchedOn")
    assert.strictEqual(wrong, "Dimmed")
  })

  it("keeps the tag names through compose: right names compile, a wrong one does not", () => {
    const { compose, difference, addition, union } = Accumulate
    const Task = Schema.TaggedUnion({ Created: {}, Assigned: {}, Unassigned: {} })
    const machine = Machine.make(Task, {
      Created: { follows: Rule.nothing() },
      Assigned: { follows: Rule.event("Created"), accumulate: compose(difference("Created"), addition("Assigned")) },
      Unassigned: { follows: Rule.event("Assigned"), accumulate: compose(union(), difference("Assigned")) }
    })
    const wrongName = () =>
      Machine.make(Task, {
        Created: { follows: Rule.nothing() },
        // @ts-expect-error "Deleted" is not an event type of the union, even inside compose
        Assigned: { follows: Rule.event("Created"), accumulate: compose(union(), difference("Deleted")) },
        Unassigned: { follows: Rule.event("Assigned") }
      })
    assert.deepStrictEqual(machine.eventTypes, ["Created", "Assigned", "Unassigned"])
    assert.strictEqual(typeof wrongName, "function")
  })

  it("types a named predicate and a custom accumulation on the machine's tags", () => {
    type LightTag = (typeof Light.Type)["_tag"]
    const machine = Machine.make(Light, {
      Installed: { follows: Rule.nothing() },
      SwitchedOn: { follows: Rule.predicate("installed", (tags) => tags.has("Installed") || tags.has("SwitchedOff")) },
      SwitchedOff: {
        follows: Rule.anyOf(
          "SwitchedOn",
          Rule.predicate<LightTag>("never", (tags) => tags.has("Installed") && false)
        ),
        accumulate: Accumulate.custom("back to installed", (tags, eventType) =>
          eventType === "SwitchedOff" && tags.has("SwitchedOn") ? ["Installed"] : tags
        )
      }
    })
    const typoInPredicate = () =>
      Machine.make(Light, {
        Installed: { follows: Rule.nothing() },
        // @ts-expect-error "Dimmed" is not an event type of the union
        SwitchedOn: { follows: Rule.predicate("dimmed", (tags) => tags.has("Dimmed")) },
        SwitchedOff: { follows: Rule.event("SwitchedOn") }
      })
    const unknownTagFromCustom = () =>
      Machine.make(Light, {
        Installed: { follows: Rule.nothing() },
        SwitchedOn: { follows: Rule.event("Installed") },
        // @ts-expect-error a custom accumulation may only return event types of the union
        SwitchedOff: { follows: Rule.event("SwitchedOn"), accumulate: Accumulate.custom("dim", () => ["Dimmed"]) }
      })
    assert.deepStrictEqual(Machine.allowedAfter(machine, ["Installed"]), ["SwitchedOn"])
    assert.strictEqual(typeof typoInPredicate, "function")
    assert.strictEqual(typeof unknownTagFromCustom, "function")
  })
})
