import { assert, describe, it } from "@effect/vitest"
import { EventStore, Faults, Subscriptions } from "@evently/store"
import * as SqlError from "effect/sql/SqlError"

const pgError = (code: string, message = "failed") =>
  new SqlError.SqlError({
    reason: new SqlError.UnknownError({
      cause: Object.assign(new Error(message), { code }),
      message,
      operation: "query"
    })
  })

describe("Faults", () => {
  it("classifies Postgres SQLSTATEs: connection, rollback, operator intervention and timeouts are transient", () => {
    for (const code of ["08006", "08003", "57P01", "57014", "40001", "40P01", "55P03", "53300"]) {
      assert.strictEqual(Faults.kindOf(pgError(code)), "Transient", code)
    }
    for (const code of ["22021", "22003", "23505", "25P02", "42P01", "42703", "28000", "0A000"]) {
      assert.strictEqual(Faults.kindOf(pgError(code)), "Permanent", code)
    }
    // A trigger's `raise exception` (P0001) or an unclassified code: neither is certain.
    assert.strictEqual(Faults.kindOf(pgError("P0001")), "Unknown")
    assert.strictEqual(Faults.kindOf(new Error("boom")), "Unknown")
    assert.strictEqual(Faults.kindOf("boom"), "Unknown")
  })

  it("classifies by the reason when there is no SQLSTATE", () => {
    const connection = new SqlError.SqlError({
      reason: new SqlError.ConnectionError({ cause: new Error("socket closed"), message: "closed", operation: "query" })
    })
    assert.isTrue(Faults.isTransient(connection))
    const syntax = new SqlError.SqlError({
      reason: new SqlError.SqlSyntaxError({ cause: new Error("x"), message: "x", operation: "query" })
    })
    assert.isTrue(Faults.isPermanent(syntax))
    assert.isTrue(Faults.isTransient(Object.assign(new Error("reset"), { code: "ECONNRESET" })))
  })

  it("looks through evently's wrappers down to the SqlError", () => {
    const stored = new EventStore.StoreError({ operation: "append", cause: pgError("57P01") })
    assert.isTrue(Faults.isTransient(stored))
    const subscription = new Subscriptions.SubscriptionStorageError({ operation: "read", cause: pgError("42P01") })
    assert.isTrue(Faults.isPermanent(subscription))
    assert.isFalse(Subscriptions.isRecoverable(subscription))
    assert.isTrue(
      Subscriptions.isRecoverable(new Subscriptions.SubscriptionStorageError({ operation: "commit", cause: "x" }))
    )
    assert.isTrue(Subscriptions.isRecoverable(new Subscriptions.LeaseLost({ subscription: "s", partition: 0 })))
    const unreadable = new EventStore.UnreadableEvent({ position: 7n, stream: "cat-1", reason: "bad metadata" })
    assert.isTrue(Faults.isPermanent(unreadable))
    assert.isFalse(Subscriptions.isRecoverable(unreadable))
    assert.isFalse(
      Subscriptions.isRecoverable(
        new Subscriptions.HandlerFailed({ subscription: "s", position: 1n, eventId: "e", cause: "x" })
      )
    )
  })

  it("a parked event's error is always text: bigint fields, cycles and undefined included", () => {
    assert.strictEqual(
      Subscriptions.describeError({ _tag: "Rejected", position: 7n }),
      '{"_tag":"Rejected","position":"7n"}'
    )
    const cycle: Record<string, unknown> = {}
    cycle.self = cycle
    assert.strictEqual(Subscriptions.describeError(cycle), "[object Object]")
    assert.strictEqual(Subscriptions.describeError(undefined), "undefined")
    assert.strictEqual(Subscriptions.describeError(""), "(empty string)")
    assert.strictEqual(Subscriptions.describeError(new TypeError("bad")), "TypeError: bad")
  })
})
