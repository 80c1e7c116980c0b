import { assert, describe, it } from "@effect/vitest"
import { Machine, Rule } from "@evently/machine"
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
})
