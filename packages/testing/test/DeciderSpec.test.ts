import { assert, describe, it } from "@effect/vitest"
import type { Decider } from "@evently/machine"
import { DeciderSpec } from "@evently/testing"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"

type Event = { readonly _tag: "Added"; readonly n: number }
type Command = { readonly add: number }
class TooBig extends Error {
  readonly _tag = "TooBig"
}

const counter: Decider.Decider<Command, Event, number, TooBig> = {
  initial: 0,
  decide: (command, total) =>
    command.add === 0
      ? Result.succeed([])
      : total + command.add > 10
        ? Result.fail(new TooBig("over ten"))
        : Result.succeed([{ _tag: "Added", n: command.add }]),
  evolve: (total, event) => total + event.n
}

const added = (n: number): Event => ({ _tag: "Added", n })

describe("DeciderSpec", () => {
  const spec = DeciderSpec.make(counter)

  it("passes when the decided events, failure or silence match", () => {
    spec
      .given([added(4)])
      .when({ add: 2 })
      .then([added(2)])
    spec
      .given([added(4)])
      .when({ add: 0 })
      .thenNothingHappens()
    const error = spec
      .given([added(4), added(5)])
      .when({ add: 2 })
      .thenFails("TooBig")
    assert.strictEqual(error.message, "over ten")
  })

  it("fails with a diff naming what was decided instead", () => {
    assert.throws(
      () =>
        spec
          .given([])
          .when({ add: 2 })
          .then([added(3)]),
      /the events decided for the command/
    )
    assert.throws(
      () => spec.given([]).when({ add: 2 }).thenNothingHappens(),
      /expected { events: \[ { _tag: .Added., n: 2 } \] }/
    )
    assert.throws(() => spec.given([]).when({ add: 2 }).thenFails("TooBig"), /should fail with TooBig/)
    assert.throws(
      () =>
        spec
          .given([added(9)])
          .when({ add: 2 })
          // @ts-expect-error: "Other" is not one of the decider's error tags
          .thenFails("Other"),
      /should fail with Other/
    )
    assert.throws(
      () =>
        spec
          .given([added(9)])
          .when({ add: 2 })
          .then([]),
      /over ten/
    )
  })
})

class Overdrawn extends Schema.TaggedError<Overdrawn>()("Overdrawn", {
  balance: Schema.Number,
  amount: Schema.Number
}) {}
class Closed extends Schema.TaggedError<Closed>()("Closed", {}) {}

type AccountEvent = { readonly _tag: "Deposited"; readonly amount: number } | { readonly _tag: "AccountClosed" }
type AccountCommand = { readonly _tag: "Withdraw"; readonly amount: number } | { readonly _tag: "Close" }

const account: Decider.Decider<AccountCommand, AccountEvent, { balance: number; closed: boolean }, Overdrawn | Closed> =
  {
    initial: { balance: 0, closed: false },
    evolve: (state, event) =>
      event._tag === "Deposited" ? { ...state, balance: state.balance + event.amount } : { ...state, closed: true },
    decide: (command, state) =>
      state.closed
        ? Result.fail(new Closed())
        : command._tag === "Close"
          ? Result.succeed([{ _tag: "AccountClosed" }])
          : command.amount > state.balance
            ? Result.fail(new Overdrawn({ balance: state.balance, amount: command.amount }))
            : Result.succeed([])
  }

const deposited = (amount: number): AccountEvent => ({ _tag: "Deposited", amount })

describe("DeciderSpec.thenFails, typed", () => {
  const spec = DeciderSpec.make(account)

  it("takes one of the decider's error tags and returns that error, typed", () => {
    const error = spec
      .given([deposited(10)])
      .when({ _tag: "Withdraw", amount: 25 })
      .thenFails("Overdrawn")
    // `balance` exists only on Overdrawn: this compiles because the error is narrowed by its tag.
    assert.strictEqual(error.balance, 10)
    assert.strictEqual(error.amount, 25)
  })

  it("runs a check on the typed error: an assertion that throws, or a predicate that returns false, fails", () => {
    spec
      .given([deposited(10)])
      .when({ _tag: "Withdraw", amount: 25 })
      .thenFails("Overdrawn", (error) => assert.strictEqual(error.amount, 25))
    assert.throws(
      () =>
        spec
          .given([deposited(10)])
          .when({ _tag: "Withdraw", amount: 25 })
          .thenFails("Overdrawn", (error) => error.amount === 1),
      /the check rejects/
    )
    assert.throws(
      () =>
        spec
          .given([deposited(10), { _tag: "AccountClosed" }])
          .when({ _tag: "Withdraw", amount: 25 })
          .thenFails("Overdrawn"),
      /should fail with Overdrawn/
    )
  })

  it("takes a predicate over the decider's error union instead of a tag", () => {
    const error = spec
      .given([{ _tag: "AccountClosed" }])
      .when({ _tag: "Close" })
      .thenFails((refusal) => refusal._tag === "Closed")
    assert.instanceOf(error, Closed)
  })

  it("an awaited specification fails with a message that says what to do", async () => {
    const when = spec.given([]).when({ _tag: "Close" })
    let message = ""
    try {
      await (when as unknown as PromiseLike<unknown>)
    } catch (error) {
      message = String(error)
    }
    assert.match(message, /neither a promise nor an Effect/)
    assert.match(message, /\.then\(\[\.\.\.events\]\)/)
    assert.notMatch(message, /deeply equal/)
  })

  it.effect("a specification yielded in Effect.gen fails with a message that says what to do", () =>
    Effect.gen(function* () {
      const message = yield* Effect.gen(function* () {
        yield* spec.given([]).when({ _tag: "Close" }) as unknown as Effect.Effect<void>
      }).pipe(
        Effect.catchDefect((defect) => Effect.succeed(String(defect))),
        Effect.map((value) => String(value))
      )
      assert.match(message, /yielded with `yield\*`/)
      assert.match(message, /thenNothingHappens/)
    })
  )
})
