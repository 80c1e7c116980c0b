import { assert, describe, it } from "@effect/vitest"
import type * as PgOperations from "@evently/postgres/PgOperations"
import * as Effect from "effect/Effect"
import * as LagHistory from "../src/internal/lagHistory.ts"

const partition = (subscription: string, lagEvents: number) =>
  ({ subscription, lagEvents }) as unknown as PgOperations.PartitionReport

describe("the lag history", () => {
  it.effect("sums each subscription's partitions, whatever its name, at most one sample a second", () =>
    Effect.gen(function* () {
      const history = yield* LagHistory.make(60_000)
      const partitions = [
        partition("constructor", 2),
        partition("constructor", 3),
        partition("__proto__", 4),
        partition("toString", 1)
      ]
      yield* history.record(1_000, partitions)
      yield* history.record(1_500, [partition("mailer", 9)])
      const samples = yield* history.samples
      assert.strictEqual(samples.length, 1)
      // Through JSON, as the page receives it: every lag is a number.
      const lag = JSON.parse(JSON.stringify(samples[0]!.lag)) as Record<string, unknown>
      assert.deepStrictEqual(
        Object.entries(lag).map(([name, n]) => `${name}=${String(n)}`),
        ["constructor=5", "__proto__=4", "toString=1"]
      )
    })
  )
})
