/**
 * `node scripts/bench-transactional.ts [events]` (default 20,000): events/s of a transactional subscription whose
 * handler upserts one projection row per event, per error policy, on a database of its own (DATABASE_URL / PG*).
 * The row "savepoint per event" wraps each handling in a savepoint, as `run` did for every transactional batch
 * before it handled batches optimistically (it still does so for a batch whose handler failed).
 */
import { NodeRuntime } from "@effect/platform-node"
import { PgSchema, PgSubscriptions, PgTransaction } from "@evently/postgres"
import { Subscriptions } from "@evently/store"
import { TestDatabase } from "@evently/testing"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as SqlClient from "effect/sql/SqlClient"

const events = Number(process.argv[2] ?? 20_000)

const seed = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`create table bench_projection (stream text primary key, total bigint not null, position bigint not null)`
  for (let done = 0; done < events; done += 1000) {
    yield* sql`insert into evently_events (stream, category, stream_version, event_id, event_type, data, recorded_at)
      select 'bench-' || (g % 500), 'bench', g / 500 + 1, gen_random_uuid(), 'Happened', jsonb_build_object('n', g), now()
      from generate_series(${done}::int, ${Math.min(events, done + 1000) - 1}::int) g`
  }
})

const measure = (name: string, onError: Subscriptions.ErrorPolicy, savepointEach: boolean) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const subs = yield* Subscriptions.Subscriptions
    const upsert = (event: Subscriptions.Batch["events"][number]) =>
      sql`insert into bench_projection (stream, total, position) values (${event.stream}, 1, ${event.position})
        on conflict (stream) do update set total = bench_projection.total + 1, position = excluded.position`
    const handler = (event: Subscriptions.Batch["events"][number]) =>
      savepointEach ? PgTransaction.withTransaction(upsert(event)) : upsert(event)
    yield* sql`truncate bench_projection`
    const started = Date.now()
    const fiber = yield* subs
      .run(name, handler, { categories: ["bench"], transactional: true, onError, progressInterval: "1 hour" })
      .pipe(Effect.forkChild)
    yield* subs.waitUntilCaughtUp(name, { timeout: "10 minutes" })
    const seconds = (Date.now() - started) / 1000
    yield* Fiber.interrupt(fiber)
    return `| ${name} | ${Math.round(events / seconds)} |`
  })

const program = Effect.gen(function* () {
  yield* seed
  const variants = [
    ["savepoint per event (before)", Subscriptions.Skip, true],
    ["Skip", Subscriptions.Skip, false],
    ["Retry", Subscriptions.Retry(Schedule.recurs(3)), false],
    ["Stop", Subscriptions.Stop, false]
  ] as const
  const rows: Array<string> = []
  // Twice, the second round in reverse order, so that neither order nor warm-up favours a variant.
  for (const [name, policy, savepointEach] of [...variants, ...variants.toReversed()]) {
    rows.push(yield* measure(`${name}${rows.length < variants.length ? "" : " (2nd)"}`, policy, savepointEach))
  }
  console.log(`${events} events, batches of 100, one upsert per event\n\n| handling | events/s |\n| --- | ---: |`)
  for (const row of rows) console.log(row)
})

program.pipe(
  Effect.provide(
    PgSubscriptions.layer().pipe(
      Layer.provideMerge(PgSchema.layerMigrate.pipe(Layer.orDie, Layer.provideMerge(TestDatabase.layer())))
    )
  ),
  Effect.scoped,
  NodeRuntime.runMain
)
