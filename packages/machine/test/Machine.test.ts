import { assert, describe, it } from "@effect/vitest"
import { Accumulate, Graph, Machine, Rule } from "@evently/machine"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"

const Order = Schema.TaggedUnion({
  Placed: { item: Schema.String, note: Schema.optional(Schema.String) },
  Paid: { amount: Schema.Number },
  Shipped: {},
  Closed: {}
})

describe("Machine", () => {
  it("produces automatic follow-ups, chained, and replays them as stored", () => {
    const machine = Machine.make(Order, {
      Placed: { follows: Rule.nothing(), requires: ["note"] },
      Paid: { follows: Rule.event("Placed") },
      Shipped: { follows: Rule.event("Paid"), auto: true },
      Closed: { follows: Rule.event("Shipped"), auto: true }
    })
    const placed = Order.cases.Placed.make({ item: "book", note: "gift" })
    const paid = Order.cases.Paid.make({ amount: 12 })
    const decided = machine.decide([placed, paid], machine.initial)
    assert.deepStrictEqual(decided, Result.succeed([placed, paid, { _tag: "Shipped" }, { _tag: "Closed" }]))
    if (Result.isSuccess(decided)) {
      const state = machine.replay(decided.success)
      assert.deepStrictEqual(state.tags, ["Closed"])
      assert.strictEqual(state.eventCount, 4)
      assert.deepStrictEqual(state.data, { item: "book", note: "gift", amount: 12 })
    }
    const missing = machine.transition(machine.initial, Order.cases.Placed.make({ item: "book" }))
    assert.isTrue(Result.isFailure(missing))
    if (Result.isFailure(missing)) {
      assert.strictEqual(missing.failure.message, "Event type 'Placed' requires field 'note'")
    }
    assert.deepStrictEqual(Graph.make(machine).terminalEventTypes, ["Closed"])
  })

  it("rejects an ambiguous automatic transition when built, naming the state", () => {
    const built = Machine.makeResult(Order, {
      Placed: { follows: Rule.nothing() },
      Paid: { follows: Rule.event("Placed"), accumulate: Accumulate.union() },
      Shipped: { follows: Rule.event("Paid") },
      Closed: { follows: Rule.event("Placed"), auto: true }
    })
    assert.isTrue(Result.isFailure(built))
    if (Result.isFailure(built)) {
      assert.strictEqual(built.failure.state, "[Placed]")
      assert.strictEqual(
        built.failure.message,
        "Invalid machine in state [Placed]: automatic transition 'Closed' competes with 'Paid'"
      )
    }
    assert.throws(() =>
      Machine.make(Order, {
        Placed: { follows: Rule.nothing() },
        Paid: { follows: Rule.event("Placed") },
        Shipped: { follows: Rule.anyOf("Paid", "Closed"), auto: true },
        Closed: { follows: Rule.event("Shipped"), auto: true }
      })
    )
  })

  it("folds data with a user evolve instead of the latest fields", () => {
    const machine = Machine.withData(
      Machine.make(Order, {
        Placed: { follows: Rule.nothing() },
        Paid: { follows: Rule.anyOf("Placed", "Paid") },
        Shipped: { follows: Rule.event("Paid") },
        Closed: { follows: Rule.event("Shipped") }
      }),
      { initial: 0, evolve: (total: number, event) => (event._tag === "Paid" ? total + event.amount : total) }
    )
    const state = machine.fold([
      Order.cases.Placed.make({ item: "book" }),
      Order.cases.Paid.make({ amount: 5 }),
      Order.cases.Paid.make({ amount: 7 })
    ])
    assert.deepStrictEqual(
      Result.map(state, (s) => s.data),
      Result.succeed(12)
    )
  })

  it("evolve is total but transition and fold refuse illegal events", () => {
    const machine = Machine.make(Order, {
      Placed: { follows: Rule.nothing() },
      Paid: { follows: Rule.event("Placed") },
      Shipped: { follows: Rule.event("Paid") },
      Closed: { follows: Rule.butNot("Closed") }
    })
    const shipped = Order.cases.Shipped.make({})
    assert.deepStrictEqual(machine.evolve(machine.initial, shipped).tags, ["Shipped"])
    const folded = machine.fold([shipped])
    assert.isTrue(Result.isFailure(folded))
    if (Result.isFailure(folded)) {
      assert.strictEqual(folded.failure.message, "Event type 'Shipped' may not be initial")
      assert.strictEqual(folded.failure._tag, "IllegalTransition")
      if (folded.failure._tag === "IllegalTransition") {
        assert.deepStrictEqual(folded.failure.allowed, ["Placed", "Closed"])
        assert.strictEqual(folded.failure.revision, 1)
      }
    }
    assert.isTrue(Machine.isInitial(machine, "Closed"))
  })

  it("answers questions about its event types without digging in machine.rules", () => {
    const machine = Machine.make(Order, {
      Placed: { follows: Rule.anyOf(Rule.nothing(), "Closed"), requires: ["item", "note"], restarting: true },
      Paid: { follows: Rule.event("Placed"), requires: ["amount"] },
      Shipped: { follows: Rule.event("Paid"), auto: true },
      Closed: { follows: Rule.event("Shipped"), auto: true }
    })
    assert.deepStrictEqual(Machine.initialEventTypes(machine), ["Placed"])
    assert.deepStrictEqual(Machine.automaticEventTypes(machine), ["Shipped", "Closed"])
    assert.isTrue(Machine.isAutomatic(machine, "Shipped"))
    assert.isFalse(Machine.isAutomatic(machine, "Paid"))
    assert.isTrue(Machine.isRestarting(machine, "Placed"))
    assert.isFalse(Machine.isRestarting(machine, "Closed"))
    assert.isTrue(Machine.isInitial(machine, "Placed"))
    assert.isFalse(Machine.isInitial(machine, "Paid"))
    assert.deepStrictEqual(Machine.requiredFields(machine, "Placed"), ["item", "note"])
    assert.deepStrictEqual(Machine.requiredFields(machine, "Shipped"), [])
    // Any set of tags, reachable or not ([Placed, Shipped] is not).
    assert.deepStrictEqual(Machine.allowedAfter(machine, ["Placed", "Shipped"]), ["Paid", "Closed"])
    assert.deepStrictEqual(Machine.allowedAfter(machine, []), ["Placed"])
    assert.deepStrictEqual(
      Graph.transitionsFrom(machine, ["Placed", "Shipped"]).map((t) => [t.event, t.toTags, t.auto, t.restarting]),
      [
        ["Paid", ["Paid"], false, false],
        ["Closed", ["Closed"], true, false]
      ]
    )
    assert.deepStrictEqual(
      Graph.transitionsFrom(machine, ["Closed"]).map((t) => `${t.from} --${t.event}--> ${t.to}`),
      ["[Closed] --Placed--> [Placed]"]
    )
  })

  it("refuses an automatic event that does not decode from the fields of the event that triggered it", () => {
    const Parcel = Schema.TaggedUnion({
      Packed: { carrier: Schema.optional(Schema.String) },
      Shipped: { carrier: Schema.String },
      Lost: {}
    })
    const machine = Machine.make(Parcel, {
      Packed: { follows: Rule.nothing() },
      Shipped: { follows: Rule.event("Packed"), auto: true },
      Lost: { follows: Rule.event("Shipped") }
    })
    const packed = Parcel.cases.Packed.make({ carrier: "UPS" })
    assert.deepStrictEqual(
      machine.decide([packed], machine.initial),
      Result.succeed([packed, Parcel.cases.Shipped.make({ carrier: "UPS" })])
    )
    const refused = machine.decide([Parcel.cases.Packed.make({})], machine.initial)
    assert.isTrue(Result.isFailure(refused))
    if (Result.isFailure(refused)) {
      assert.instanceOf(refused.failure, Machine.InvalidAutomaticEvent)
      assert.match(
        refused.failure.message,
        /^Automatic event type 'Shipped' after 'Packed' does not decode: .*carrier/s
      )
    }
  })
})
