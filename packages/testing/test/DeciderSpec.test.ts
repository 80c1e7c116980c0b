import { assert, describe, it } from "@effect/vitest"
import type { Decider } from "@evently/machine"
import { DeciderSpec } from "@evently/testing"
import * as Result from "effect/Result"

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
