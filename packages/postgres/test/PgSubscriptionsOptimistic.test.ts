import { assert, layer } from "@effect/vitest"
import { PgSchema, PgSubscriptions } from "@evently/postgres"
import { Subscriptions } from "@evently/store"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Schedule from "effect/Schedule"
import * as SqlClient from "effect/sql/SqlClient"
import * as Faults from "./faults.ts"
import { insertEvents, layerSubscriptions } from "./helpers.ts"

// A transactional batch runs without a savepoint per event; when a handler fails, the batch's transaction rolls back
// and the batch is redone with a savepoint per event, so that the policy sees what it saw before.

const setUp = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`create table if not exists opt_projection (subscription text not null, position bigint not null)`
})

/** A projection handler that writes a row, then fails when `fails(position, call)` says so; it counts its calls. */
const projecting = (name: string, fails: (position: bigint, call: number) => boolean) => {
  const calls = new Map<bigint, number>()
  const handler = (event: { readonly position: bigint }) =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const call = (calls.get(event.position) ?? 0) + 1
      calls.set(event.position, call)
      yield* sql`insert into opt_projection (subscription, position) values (${name}, ${event.position})`
      if (fails(event.position, call)) return yield* Effect.fail(new Error(`refused ${event.position}`))
    })
  return { calls, handler }
}

/** Each committed row of the projection as `[position, copies]`. */
const rowsOf = (name: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ position: bigint; copies: number }>`
      select position, count(*)::int as copies from opt_projection where subscription = ${name}
      group by position order by position`
    return rows.map((row) => [BigInt(row.position), row.copies] as const)
  })

/** Runs `name` over the category until it caught up, then stops it. */
const runUntilCaughtUp = <E>(
  name: string,
  handler: (event: { readonly position: bigint }) => Effect.Effect<void, E, SqlClient.SqlClient>,
  onError: Subscriptions.ErrorPolicy
) =>
  Effect.gen(function* () {
    const subs = yield* Subscriptions.Subscriptions
    const fiber = yield* subs
      .run(name, handler, { categories: [name], batchSize: 10, transactional: true, onError })
      .pipe(Effect.forkChild)
    yield* subs.waitUntilCaughtUp(name, { timeout: "20 seconds" })
    const phases = yield* subs.phases(name)
    yield* Fiber.interrupt(fiber)
    const committed = yield* Metric.value(
      Metric.withAttributes(PgSubscriptions.eventsCommitted, { subscription: name, partition: "0" })
    )
    return { phases: phases.map((event) => event.phase), committed: committed.count }
  })

layer(layerSubscriptions(), { excludeTestServices: true, timeout: "60 seconds" })(
  "PgSubscriptions optimistic",
  (it) => {
    it.effect("the happy path takes no savepoint: a batch's rows share the transaction id of its checkpoint", () =>
      Effect.gen(function* () {
        yield* setUp
        const sql = yield* SqlClient.SqlClient
        const t = yield* PgSchema.Tables
        const policies = {
          nosp_skip: Subscriptions.Skip,
          nosp_retry: Subscriptions.Retry(Schedule.recurs(3)),
          nosp_stop: Subscriptions.Stop
        }
        for (const [name, policy] of Object.entries(policies)) {
          yield* insertEvents(`${name}-1`, 10)
          yield* runUntilCaughtUp(name, projecting(name, () => false).handler, policy)
          // A row written in a savepoint carries the savepoint's own transaction id as its xmin.
          const [ids] = yield* sql<{ rows: number; xmins: number }>`
          select count(*)::int as rows, count(distinct x)::int as xmins from (
            select xmin::text as x from opt_projection where subscription = ${name}
            union all select xmin::text from ${sql(t.checkpoints)} where subscription = ${name}) s`
          assert.deepStrictEqual(ids, { rows: 11, xmins: 1 }, name)
        }
      })
    )

    it.effect("Skip: the 3rd and 5th events fail after writing: the others commit once, those two are parked", () =>
      Effect.gen(function* () {
        yield* setUp
        const subs = yield* Subscriptions.Subscriptions
        const positions = yield* insertEvents("optskip-1", 5)
        const bad = [positions[2]!, positions[4]!]
        const { calls, handler } = projecting("optskip", (position) => bad.includes(position))
        const { committed, phases } = yield* runUntilCaughtUp("optskip", handler, Subscriptions.Skip)
        assert.deepStrictEqual(
          yield* rowsOf("optskip"),
          [positions[0]!, positions[1]!, positions[3]!].map((position) => [position, 1] as const)
        )
        const parked = yield* subs.parked("optskip")
        assert.deepStrictEqual(
          parked.map((event) => [event.position, event.error]),
          bad.map((position) => [position, `Error: refused ${position}`])
        )
        // Before the first failure, handlers ran twice (their writes rolled back once); the failed event was not
        // handled again for the redo, so Skip parked it after one attempt as it does with a savepoint per event.
        assert.deepStrictEqual(
          positions.map((position) => calls.get(position)),
          [2, 2, 1, 1, 1]
        )
        // The redone batch is counted once.
        assert.strictEqual(committed, 5)
        assert.deepStrictEqual(phases, [
          { _tag: "CaughtUp", events: 5, seconds: (phases[0] as { seconds: number }).seconds }
        ])
      })
    )

    it.effect("Retry: the 3rd event fails on its first attempt only: every event commits once, nothing parked", () =>
      Effect.gen(function* () {
        yield* setUp
        const subs = yield* Subscriptions.Subscriptions
        const positions = yield* insertEvents("optretry-1", 5)
        const bad = positions[2]!
        const { calls, handler } = projecting("optretry", (position, call) => position === bad && call === 1)
        const { committed } = yield* runUntilCaughtUp(
          "optretry",
          handler,
          Subscriptions.Retry(Schedule.recurs(1), { exhausted: "Skip" })
        )
        assert.deepStrictEqual(
          yield* rowsOf("optretry"),
          positions.map((position) => [position, 1] as const)
        )
        assert.deepStrictEqual(yield* subs.parked("optretry"), [])
        // The failure without savepoints was the first of the schedule's attempts: one retry was left, and it succeeded.
        assert.deepStrictEqual(
          positions.map((position) => calls.get(position)),
          [2, 2, 2, 1, 1]
        )
        assert.strictEqual(committed, 5)
      })
    )

    it.effect(
      "Retry exhausted: the failed attempt without savepoints counts, so the schedule's retries are as before",
      () =>
        Effect.gen(function* () {
          yield* setUp
          const subs = yield* Subscriptions.Subscriptions
          const positions = yield* insertEvents("optexhaust-1", 3)
          const bad = positions[1]!
          const { calls, handler } = projecting("optexhaust", (position) => position === bad)
          yield* runUntilCaughtUp("optexhaust", handler, Subscriptions.Retry(Schedule.recurs(2), { exhausted: "Skip" }))
          assert.strictEqual(calls.get(bad), 3)
          assert.deepStrictEqual(
            yield* rowsOf("optexhaust"),
            [positions[0]!, positions[2]!].map((position) => [position, 1] as const)
          )
          assert.deepStrictEqual(
            (yield* subs.parked("optexhaust")).map((event) => event.position),
            [bad]
          )
        })
    )

    it.effect("Skip: a fault while the batch is redone starts over from the checkpoint; the event is parked once", () =>
      Effect.gen(function* () {
        yield* setUp
        yield* Faults.install
        const sql = yield* SqlClient.SqlClient
        const subs = yield* Subscriptions.Subscriptions
        const positions = yield* insertEvents("optfault-1", 5)
        // The 2nd event's handler fails (Skip parks it, in the redo); the 4th event's SQL then fails with a
        // serialization failure twice (a fault: the batch, its parking included, rolls back and the partition starts
        // over from its checkpoint, twice).
        const point = "serialization:optfault"
        yield* Faults.arm(point, positions[3]!, 2)
        const { handler } = projecting("optfault", (position) => position === positions[1]!)
        const faulty = (event: { readonly position: bigint }) =>
          Effect.andThen(sql`select fault_serialization(${point}, ${event.position})`, handler(event))
        yield* runUntilCaughtUp("optfault", faulty, Subscriptions.Skip)
        assert.strictEqual(yield* Faults.fired(point), 2)
        assert.deepStrictEqual(
          yield* rowsOf("optfault"),
          positions.filter((_, i) => i !== 1).map((position) => [position, 1] as const)
        )
        assert.deepStrictEqual(
          (yield* subs.parked("optfault")).map((event) => event.position),
          [positions[1]!]
        )
      })
    )

    it.effect("Stop: a failing event rolls the whole batch back and moves no checkpoint", () =>
      Effect.gen(function* () {
        yield* setUp
        const subs = yield* Subscriptions.Subscriptions
        const positions = yield* insertEvents("optstop-1", 5)
        const { handler } = projecting("optstop", (position) => position === positions[2]!)
        const error = yield* Effect.flip(
          subs.run("optstop", handler, { categories: ["optstop"], batchSize: 10, transactional: true })
        )
        assert.strictEqual(error._tag, "HandlerFailed")
        assert.strictEqual((error as Subscriptions.HandlerFailed).position, positions[2]!)
        assert.deepStrictEqual(yield* rowsOf("optstop"), [])
        assert.strictEqual((yield* subs.status("optstop")).partitions[0]!.checkpoint.position, 0n)
      })
    )
  }
)
