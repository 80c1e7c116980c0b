import { assert, layer } from "@effect/vitest"
import { PgEventStore, PgSchema } from "@evently/postgres"
import { EventStore, ExpectedVersion, Subscriptions } from "@evently/store"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as SqlClient from "effect/sql/SqlClient"
import * as Stream from "effect/Stream"
import { layerSubscriptions } from "./helpers.ts"

// Per-stream order of the log as subscriptions read it, `(transaction_id, position)` below the oldest transaction in
// progress, when a transaction takes its id (writes something of its own) before it appends: issue 15, part 3.

const unique = () => crypto.randomUUID().replaceAll("-", "").slice(0, 12)

/** A table of the caller's own: writing to it is how a transaction takes its id before it appends. */
const side = "stream_order_side"

const createSide = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`create table if not exists ${sql(side)} (
    id bigint generated always as identity primary key,
    note text not null
  )`
})

/** Writes a row of the caller's own in the current transaction: its backend and the transaction id it took. */
const writeSide = (note: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{ readonly pid: number; readonly xid: string }>`
      insert into ${sql(side)} (note) values (${note})
      returning pg_backend_pid() as pid, pg_current_xact_id()::text as xid`
    return { pid: row!.pid, xid: BigInt(row!.xid) }
  })

/** Polls until backend `pid` waits for a lock that backend `by` holds. */
const untilBlocked = (pid: number, by: number) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{ readonly blocked: boolean }>`
      select ${by}::int4 = any(pg_blocking_pids(${pid}::int4)) as blocked`
    if (!row!.blocked) return yield* Effect.fail("not blocked yet")
  }).pipe(Effect.retry(Schedule.spaced("5 millis")))

/** Polls until some backend of this database waits for a lock that backend `by` holds; returns that backend. */
const untilSomeoneBlockedBy = (by: number) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ readonly pid: number }>`
      select pid from pg_stat_activity
      where datname = current_database() and ${by}::int4 = any(pg_blocking_pids(pid))`
    if (rows.length !== 1) return yield* Effect.fail("nobody blocked yet")
    return rows[0]!.pid
  }).pipe(Effect.retry(Schedule.spaced("5 millis")))

/**
 * A caller's transaction on a connection of its own that writes a row of its own (taking its id), appends to `stream`
 * and holds the stream row's lock until `release`.
 */
const holder = (stream: string, expected: ExpectedVersion.ExpectedVersion, eventId = crypto.randomUUID()) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const es = yield* EventStore.EventStore
    const appended = yield* Deferred.make<{ readonly pid: number; readonly xid: bigint }>()
    const release = yield* Deferred.make<void>()
    const fiber = yield* sql
      .withTransaction(
        Effect.gen(function* () {
          const own = yield* writeSide(`holder of ${stream}`)
          const result = yield* es.append(stream, [{ type: "Held", data: {}, eventId }], { expected })
          yield* Deferred.succeed(appended, own)
          yield* Deferred.await(release)
          return { ...own, result }
        })
      )
      .pipe(Effect.forkChild)
    const own = yield* Deferred.await(appended)
    return { ...own, eventId, expected, release: Deferred.succeed(release, undefined), done: Fiber.join(fiber) }
  })

/** Runs a subscription over `category` until it has handled everything committed so far: the events, in order. */
const delivered = (category: string) =>
  Effect.gen(function* () {
    const subs = yield* Subscriptions.Subscriptions
    const name = `order-${category}`
    const seen: Array<EventStore.RecordedEvent> = []
    const runner = yield* subs
      .run(name, (event) => Effect.sync(() => seen.push(event)), { categories: [category] })
      .pipe(Effect.forkChild)
    yield* subs.waitUntilCaughtUp(name)
    yield* Fiber.interrupt(runner)
    return seen
  })

const versionsOf = (events: ReadonlyArray<{ readonly stream: string; readonly streamVersion: number }>) => {
  const versions = new Map<string, Array<number>>()
  for (const event of events) versions.set(event.stream, [...(versions.get(event.stream) ?? []), event.streamVersion])
  return versions
}

const oneTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1)

type Kind = "Any" | "StreamExists" | "Exact"

/**
 * The defect's interleaving, through the store, in callers' transactions. A writes a row of its own (it takes the
 * older id), B writes one, then appends to the stream; A appends to it and waits for the stream row's lock; B commits;
 * A's append goes through; A commits. With `Exact`, A appends once B has committed instead: an exact check that waits
 * for another writer fails when that writer commits (the version moved), so only this order lets A's append through.
 */
const interleaved = (kind: Kind) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const es = yield* EventStore.EventStore
    yield* createSide
    const category = `ord${unique()}`
    const stream = `${category}-1`
    // B creates the stream for `Any`; for the others it has a first event, committed before A and B begin.
    const seeded = kind === "Any" ? 0 : 1
    if (seeded === 1) yield* es.append(stream, [{ type: "Seeded", data: {} }], { expected: ExpectedVersion.NoStream })
    const expectedA =
      kind === "Any"
        ? ExpectedVersion.Any
        : kind === "StreamExists"
          ? ExpectedVersion.StreamExists
          : ExpectedVersion.Exact(seeded + 1)
    const eventA = { type: "ByA", data: {}, eventId: crypto.randomUUID() }
    const aHasId = yield* Deferred.make<number>()
    const aMayAppend = yield* Deferred.make<void>()
    const a = yield* sql
      .withTransaction(
        Effect.gen(function* () {
          const own = yield* writeSide("A")
          yield* Deferred.succeed(aHasId, own.pid)
          yield* Deferred.await(aMayAppend)
          const result = yield* es.append(stream, [eventA], { expected: expectedA })
          return { ...own, result }
        })
      )
      .pipe(Effect.forkChild)
    const aPid = yield* Deferred.await(aHasId)
    const b = yield* holder(stream, seeded === 0 ? ExpectedVersion.NoStream : ExpectedVersion.Exact(seeded))
    if (kind === "Exact") {
      yield* b.release
      yield* b.done
      yield* Deferred.succeed(aMayAppend, undefined)
    } else {
      yield* Deferred.succeed(aMayAppend, undefined)
      yield* untilBlocked(aPid, b.pid)
      yield* b.release
    }
    const byB = yield* b.done
    const byA = yield* Fiber.join(a)
    // The interleaving happened: A's id is the older one, yet A wrote the later version.
    assert.isTrue(byA.xid < byB.xid, `A took ${byA.xid}, B ${byB.xid}`)
    assert.strictEqual(byB.result.version, seeded + 1)
    assert.strictEqual(byA.result.version, seeded + 2)

    const seen = yield* delivered(category)
    assert.deepStrictEqual(
      seen.map((event) => event.streamVersion),
      oneTo(seeded + 2)
    )
    assert.deepStrictEqual(
      [...(yield* Stream.runCollect(es.readStream(stream)))].map((event) => event.streamVersion),
      oneTo(seeded + 2)
    )
    // A's events take their place after B's: B's transaction id, not A's own.
    assert.strictEqual(seen[seeded + 1]!.transactionId, byB.xid)
    assert.strictEqual(seen[seeded]!.transactionId, byB.xid)

    // Each append is still told apart from the other when it is retried, although both carry B's id.
    assert.deepStrictEqual(
      yield* es.append(stream, [{ type: "Held", data: {}, eventId: b.eventId }], { expected: b.expected }),
      byB.result
    )
    assert.deepStrictEqual(yield* es.append(stream, [eventA], { expected: expectedA }), byA.result)
  })

/**
 * The same interleaving with a group-commit batch as A: its transaction takes its id when it creates a stream, then
 * waits for a stream that L holds; B takes a newer id and appends to the target stream; L commits, and the batch waits
 * for B; B commits; the batch writes the target stream's next version. `maxBatchesInFlight: 1` and a first batch held
 * up by M make the three appends one batch.
 */
const inOneBatch = (kind: "Any" | "StreamExists") =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const es = yield* EventStore.EventStore
    const t = yield* PgSchema.Tables
    yield* createSide
    const category = `obt${unique()}`
    // The batch bumps its streams in name order: `a` (created: the batch takes its id), `b` (L's), then `c`.
    const [created, held, target, gate] = ["a", "b", "c", "w"].map((name) => `${category}-${name}`) as [
      string,
      string,
      string,
      string
    ]
    const seeded = kind === "Any" ? 0 : 1
    yield* es.append(held, [{ type: "Seeded", data: {} }])
    if (seeded === 1) yield* es.append(target, [{ type: "Seeded", data: {} }])
    const m = yield* holder(gate, ExpectedVersion.NoStream)
    const l = yield* holder(held, ExpectedVersion.Exact(1))
    // A lone append goes out at once and waits for M: the queue's only batch in flight.
    const gated = yield* es.append(gate, [{ type: "Gated", data: {} }]).pipe(Effect.forkChild)
    yield* untilSomeoneBlockedBy(m.pid)
    const batch = yield* Effect.forEach(
      [
        [created, ExpectedVersion.Any],
        [held, ExpectedVersion.Any],
        [target, kind === "Any" ? ExpectedVersion.Any : ExpectedVersion.StreamExists]
      ] as const,
      ([stream, expected]) =>
        es
          .append(stream, [{ type: "ByBatch", data: {} }], { expected })
          .pipe(Effect.map((result) => ({ expected, result }))),
      { concurrency: "unbounded" }
    ).pipe(Effect.forkChild)
    // The three appends queue behind the gated batch; its end starts theirs.
    yield* Effect.yieldNow
    yield* m.release
    yield* m.done
    yield* Fiber.join(gated)
    const batchPid = yield* untilSomeoneBlockedBy(l.pid)
    const b = yield* holder(target, seeded === 0 ? ExpectedVersion.NoStream : ExpectedVersion.Exact(seeded))
    yield* l.release
    yield* l.done
    yield* untilBlocked(batchPid, b.pid)
    yield* b.release
    const byB = yield* b.done
    const [, , byBatch] = yield* Fiber.join(batch)
    assert.strictEqual(byB.result.version, seeded + 1)
    assert.strictEqual(byBatch!.result.version, seeded + 2)

    // The three appends were one transaction, which took its id (the key of the stream it created) before B did.
    const [row] = yield* sql<{ readonly writers: number; readonly xid: string }>`
      select count(distinct e.xmin::text)::int4 as writers,
        (select c.transaction_id::text from ${sql(t.events)} c where c.stream = ${created}) as xid
      from ${sql(t.events)} e where e.category = ${category} and e.event_type = 'ByBatch'`
    assert.strictEqual(row!.writers, 1)
    assert.isTrue(BigInt(row!.xid) < byB.xid, `the batch took ${row!.xid}, B ${byB.xid}`)

    const seen = (yield* delivered(category)).filter((event) => event.stream === target)
    assert.deepStrictEqual(
      seen.map((event) => event.streamVersion),
      oneTo(seeded + 2)
    )
    assert.deepStrictEqual(
      [...(yield* Stream.runCollect(es.readStream(target)))].map((event) => event.streamVersion),
      oneTo(seeded + 2)
    )
  })

class Rollback extends Data.TaggedError("Rollback")<{}> {}

const between = (minimum: number, maximum: number) => Schema.Int.check(Schema.isBetween({ minimum, maximum }))

const Transaction = Schema.Struct({
  /** Whether it writes a row of its own (and takes its id) before its first append. */
  early: Schema.Boolean,
  appends: Schema.Array(Schema.Struct({ stream: between(0, 2), events: between(1, 2) })).check(
    Schema.isBetweenLength(1, 3)
  ),
  /** 0: it rolls back; otherwise it commits. */
  outcome: between(0, 3)
})

interface Runner {
  readonly early: boolean
  readonly commits: boolean
  readonly appends: ReadonlyArray<{ readonly stream: string; readonly events: number }>
  /** One gate per step: the first statement, each append, the end (commit or rollback). */
  readonly gates: ReadonlyArray<Deferred.Deferred<void>>
  /** Steps released, and steps done. */
  issued: number
  done: number
  pid: number | undefined
  readonly written: Array<{ readonly stream: string; readonly version: number; readonly position: bigint }>
}

interface Delivered {
  readonly key: bigint
  readonly position: bigint
  readonly stream: string
  readonly streamVersion: number
}

const ascending = (x: bigint, y: bigint) => (x < y ? -1 : x > y ? 1 : 0)

/** The order of the log as subscriptions read it. */
const compare = (a: { key: bigint; position: bigint }, b: { key: bigint; position: bigint }) =>
  a.key === b.key ? ascending(a.position, b.position) : ascending(a.key, b.key)

layer(Layer.provideMerge(PgEventStore.layer(), layerSubscriptions()), {
  excludeTestServices: true,
  timeout: "60 seconds"
})("PgStreamOrder", (it) => {
  for (const [label, options] of [
    ["group commit on", {}],
    ["groupCommit: false", { groupCommit: false }]
  ] as const) {
    for (const kind of ["Any", "StreamExists", "Exact"] as const) {
      it.effect(`a transaction that took its id first appends after a newer one (${kind}, ${label})`, () =>
        interleaved(kind).pipe(Effect.provide(PgEventStore.layer(options)))
      )
    }
  }

  for (const kind of ["Any", "StreamExists"] as const) {
    it.effect(`a group-commit batch that took its id first appends after a newer transaction (${kind})`, () =>
      inOneBatch(kind).pipe(Effect.provide(PgEventStore.layer({ groupCommit: { maxBatchesInFlight: 1 } })))
    )
  }

  it.effect.prop(
    "random interleavings of transactions, some taking their id early: gap-free, each event once, streams in order",
    {
      streams: between(2, 3),
      transactions: Schema.Array(Transaction).check(Schema.isBetweenLength(4, 6)),
      picks: Schema.Array(between(0, 1000)).check(Schema.isBetweenLength(30, 30))
    },
    ({ picks, streams, transactions }) =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const es = yield* EventStore.EventStore
        const t = yield* PgSchema.Tables
        yield* createSide
        const category = `prop${unique()}`
        const runners: Array<Runner> = []
        for (const transaction of transactions) {
          const appends = transaction.appends
            .map((append) => ({ stream: `${category}-${append.stream % streams}`, events: append.events }))
            // Stream rows are locked in one order by every transaction, so they never deadlock.
            .sort((x, y) => (x.stream < y.stream ? -1 : x.stream > y.stream ? 1 : 0))
          const gates = yield* Effect.forEach(appends.concat([appends[0]!, appends[0]!]), () => Deferred.make<void>())
          runners.push({
            early: transaction.early,
            commits: transaction.outcome > 0,
            appends,
            gates,
            issued: 0,
            done: 0,
            pid: undefined,
            written: []
          })
        }
        const fibers = yield* Effect.forEach(runners, (runner) =>
          sql
            .withTransaction(
              Effect.gen(function* () {
                yield* Deferred.await(runner.gates[0]!)
                const [row] = runner.early
                  ? yield* sql<{ readonly pid: number }>`
                      insert into ${sql(side)} (note) values ('early') returning pg_backend_pid() as pid`
                  : yield* sql<{ readonly pid: number }>`select pg_backend_pid() as pid`
                runner.pid = row!.pid
                runner.done = 1
                for (const [index, { events, stream }] of runner.appends.entries()) {
                  yield* Deferred.await(runner.gates[index + 1]!)
                  const result = yield* es.append(
                    stream,
                    Array.from({ length: events }, (_, n) => ({ type: "E", data: { n } })),
                    { expected: ExpectedVersion.Any }
                  )
                  result.positions.forEach((position, n) =>
                    runner.written.push({ stream, version: result.version - events + 1 + n, position })
                  )
                  runner.done = index + 2
                }
                yield* Deferred.await(runner.gates[runner.gates.length - 1]!)
                if (!runner.commits) return yield* new Rollback()
              })
            )
            .pipe(
              Effect.catchTag("Rollback", () => Effect.void),
              Effect.ensuring(Effect.sync(() => (runner.done = runner.gates.length))),
              Effect.forkScoped
            )
        )

        // The reader: the subscriptions' gap-free read, its cursor recorded after every step.
        const seen: Array<Delivered> = []
        const cursors: Array<{ readonly key: bigint; readonly position: bigint; readonly seen: number }> = []
        let cursor = { key: 0n, position: 0n }
        const read = Effect.gen(function* () {
          const rows = yield* sql<{ readonly key: string; readonly position: bigint; stream: string; version: number }>`
            select e.transaction_id::text as key, e.position, e.stream, e.stream_version::int4 as version
            from ${sql(t.events)} e
            where (e.transaction_id, e.position) > (${String(cursor.key)}::xid8, ${cursor.position})
              and e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
              and e.category = ${category}
            order by e.transaction_id, e.position`
          for (const row of rows) {
            seen.push({
              key: BigInt(row.key),
              position: BigInt(row.position),
              stream: row.stream,
              streamVersion: row.version
            })
          }
          if (seen.length > 0) cursor = seen[seen.length - 1]!
          cursors.push({ ...cursor, seen: seen.length })
        })

        // Waits until every released step is done or waits for a lock another transaction of the run holds: a whole
        // pass finds it so, and no step ended during the pass (an end can let go a transaction the pass found waiting).
        // A wait for anyone else (autovacuum truncating a table, say) is only a delay.
        const settle = Effect.gen(function* () {
          while (true) {
            const before = runners.map((runner) => runner.done)
            const pids = runners.flatMap((runner) => (runner.pid === undefined ? [] : [runner.pid]))
            let pending = false
            for (const runner of runners) {
              if (runner.done >= runner.issued) continue
              if (runner.pid !== undefined) {
                const [row] = yield* sql<{ readonly blocked: boolean }>`
                  select pg_blocking_pids(${runner.pid}::int4) && ${pids}::int4[] as blocked`
                if (row!.blocked) continue
              }
              pending = true
            }
            if (!pending && runners.every((runner, index) => runner.done === before[index])) return
            yield* Effect.sleep("1 millis")
          }
        })
        // Should the property fail midway, a statement waiting for a lock is cancelled, so that every transaction of
        // the run ends (rolled back) when the run's scope interrupts its fiber.
        yield* Effect.addFinalizer(() =>
          Effect.forEach(
            runners.filter((runner) => runner.pid !== undefined && runner.done < runner.gates.length),
            (runner) => Effect.ignore(sql`select pg_cancel_backend(${runner.pid!}::int4)`),
            { discard: true }
          )
        )

        let pick = 0
        while (runners.some((runner) => runner.issued < runner.gates.length)) {
          const ready = runners.filter((runner) => runner.issued < runner.gates.length && runner.done >= runner.issued)
          // Someone holds the lock every waiting transaction waits for, and only a ready one can hold it.
          assert.isAbove(ready.length, 0, "every open transaction waits for a lock")
          const runner = ready[picks[pick++ % picks.length]! % ready.length]!
          runner.issued++
          yield* Deferred.succeed(runner.gates[runner.issued - 1]!, undefined)
          yield* settle
          yield* read
        }
        yield* Effect.forEach(fibers, Fiber.join, { discard: true })

        const written = runners.filter((runner) => runner.commits).flatMap((runner) => runner.written)
        const stored = (yield* sql<{ readonly key: string; readonly position: bigint }>`
          select transaction_id::text as key, position from ${sql(t.events)} where category = ${category}
          order by transaction_id, position`).map((row) => ({ key: BigInt(row.key), position: BigInt(row.position) }))
        // Every transaction has ended: the reader reads on until its cursor reaches the last row (whether or not it
        // skipped any on the way).
        const last = stored[stored.length - 1]
        if (last !== undefined) {
          yield* read.pipe(
            Effect.repeat({ until: () => compare(cursor, last) >= 0, schedule: Schedule.spaced("10 millis") }),
            Effect.timeout("20 seconds")
          )
        }

        // (a) Every committed event, exactly once, and nothing else.
        assert.deepStrictEqual(
          seen.map((event) => event.position).sort(ascending),
          written.map((event) => event.position).sort(ascending)
        )
        assert.strictEqual(stored.length, written.length)
        // (b) Each stream in version order.
        for (const [stream, versions] of versionsOf(seen)) {
          assert.deepStrictEqual(versions, oneTo(versions.length), `stream ${stream}`)
        }
        // (c) Nothing ever appeared behind the cursor: whatever sorts at or before a recorded cursor had been read by
        // then.
        const readAt = new Map(seen.map((event, index) => [event.position, index]))
        for (const recorded of cursors) {
          for (const row of stored) {
            if (compare(row, recorded) <= 0) {
              assert.isBelow(readAt.get(row.position)!, recorded.seen, `position ${row.position} behind a cursor`)
            }
          }
        }
      }).pipe(Effect.scoped),
    { timeout: 120_000, arbitrary: { runs: 20, maxShrinks: 30 } }
  )

  it.effect("load: 12 writers, 30% of transactions take their id early, 4 hot streams: each event once, in order", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const es = yield* EventStore.EventStore
      const subs = yield* Subscriptions.Subscriptions
      const t = yield* PgSchema.Tables
      yield* createSide
      const category = `load${unique()}`
      const name = `order-${category}`
      const seen: Array<EventStore.RecordedEvent> = []
      const runner = yield* subs
        .run(name, (event) => Effect.sync(() => seen.push(event)), { categories: [category], batchSize: 200 })
        .pipe(Effect.forkChild)
      let early = 0
      yield* Effect.forEach(
        Array.from({ length: 12 }, (_, writer) => writer),
        () =>
          Effect.forEach(
            Array.from({ length: 80 }, (_, i) => i),
            () =>
              Effect.gen(function* () {
                const stream = `${category}-${yield* Random.nextIntBetween(0, 3)}`
                const events = [{ type: "E", data: {} }]
                if ((yield* Random.next) >= 0.3) return yield* es.append(stream, events)
                early++
                return yield* sql.withTransaction(
                  Effect.gen(function* () {
                    yield* writeSide("early")
                    yield* Effect.sleep(`${yield* Random.nextIntBetween(0, 2)} millis`)
                    return yield* es.append(stream, events)
                  })
                )
              }),
            { discard: true }
          ),
        { concurrency: 12, discard: true }
      )
      yield* subs.waitUntilCaughtUp(name)
      yield* Fiber.interrupt(runner)
      const [stored] = yield* sql<{ readonly count: number }>`
        select count(*)::int4 as count from ${sql(t.events)} where category = ${category}`
      assert.strictEqual(stored!.count, 960)
      assert.isAbove(early, 0)
      assert.strictEqual(new Set(seen.map((event) => event.position)).size, 960)
      assert.strictEqual(seen.length, 960)
      for (const [stream, versions] of versionsOf(seen)) {
        assert.deepStrictEqual(versions, oneTo(versions.length), `stream ${stream}`)
      }
    })
  )
})
