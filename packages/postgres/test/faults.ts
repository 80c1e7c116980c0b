import { assert } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { PgConfig, PgSchema, PgSubscriptions } from "@evently/postgres"
import type { EventStore, Subscriptions } from "@evently/store"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Predicate from "effect/Predicate"
import * as Schedule from "effect/Schedule"
import * as SqlClient from "effect/sql/SqlClient"
import type * as Statement from "effect/sql/Statement"

/**
 * Fault points in the database, each a row of `fault_points`: from `position` on (the first call with a position at
 * or after it), the point fires `times` times, then lets everything through. The calls are counted by a sequence of
 * the point's own, since the exception a firing point raises rolls back everything else its transaction did.
 * `fault_checkpoint` is a BEFORE UPDATE trigger on the checkpoints table that fires point `checkpoint:<subscription>`
 * when a checkpoint moves; `fault_serialization` raises a serialization failure (SQLSTATE 40001) and `fault_sleep`
 * sleeps, each when its point fires.
 */
export const install = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const t = yield* PgSchema.Tables
  yield* sql`create table if not exists fault_points (
    point text primary key,
    position bigint not null,
    times int not null,
    counter regclass not null
  )`
  yield* sql`create or replace function fault_fires(p text, pos bigint) returns boolean language plpgsql as $$
    declare
      f fault_points;
    begin
      select * into f from fault_points where point = p;
      if not found or pos < f.position then
        return false;
      end if;
      return nextval(f.counter) <= f.times;
    end $$`
  yield* sql`create or replace function fault_checkpoint() returns trigger language plpgsql as $$
    begin
      if new.position <> old.position and fault_fires('checkpoint:' || new.subscription, new.position) then
        raise exception 'injected checkpoint failure: % to position %', new.subscription, new.position;
      end if;
      return new;
    end $$`
  yield* sql`create or replace trigger fault_checkpoint before update on ${sql(t.checkpoints)}
    for each row execute function fault_checkpoint()`
  yield* sql`create or replace function fault_serialization(p text, pos bigint) returns void language plpgsql as $$
    begin
      if fault_fires(p, pos) then
        raise exception 'injected serialization failure at position %', pos using errcode = '40001';
      end if;
    end $$`
  yield* sql`create or replace function fault_sleep(p text, pos bigint, seconds float8) returns void
    language plpgsql as $$
    begin
      if fault_fires(p, pos) then
        if current_setting('statement_timeout') = '0' then
          raise exception 'fault_sleep needs a statement_timeout';
        end if;
        perform pg_sleep(seconds);
      end if;
    end $$`
})

/**
 * Arms a fault point: from `position` on it fires `times` times.
 */
export const arm = (point: string, position: bigint, times: number) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const counter = `fault_counter_${point.replaceAll(/[^a-z0-9]/g, "_")}`
    yield* sql`create sequence ${sql(counter)}`
    yield* sql`insert into fault_points (point, position, times, counter)
      values (${point}, ${position}, ${times}, ${counter}::regclass)`
  })

/**
 * How many times a fault point fired so far.
 */
export const fired = (point: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{ fired: number }>`
      select least(coalesce(pg_sequence_last_value(counter), 0), times)::int as fired
      from fault_points where point = ${point}`
    return row?.fired ?? 0
  })

/**
 * A `PgClient` of its own (named `applicationName`, on the test's database) with the Postgres subscriptions on it,
 * so that the test can kill exactly the subscription's backends; `startupParameters` are session settings of every
 * connection of the client.
 */
export const ownClient = (
  applicationName: string,
  startupParameters?: Readonly<Record<string, string>>
): Effect.Effect<
  Layer.Layer<Subscriptions.Subscriptions | SqlClient.SqlClient | PgClient.PgClient>,
  unknown,
  SqlClient.SqlClient
> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{ database: string }>`select current_database() as database`
    const url = yield* PgConfig.url
    return PgSubscriptions.layer({ lockRetryInterval: "100 millis", reconnectDelay: "100 millis" }).pipe(
      Layer.provideMerge(
        Layer.orDie(
          PgClient.layer({
            url,
            database: row!.database,
            applicationName,
            maxConnections: 6,
            ...(startupParameters === undefined ? {} : { startupParameters })
          })
        )
      )
    )
  })

/**
 * Terminates every backend of the client named `applicationName` on this database; how many there were.
 */
export const terminate = (applicationName: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{ count: number }>`
      select count(*)::int as count from (
        select pg_terminate_backend(pid) from pg_stat_activity
        where application_name = ${applicationName} and datname = current_database()) t`
    return row!.count
  })

/**
 * Waits (up to 10 s) until a backend of `applicationName` (other than the `excluded` ones) waits on a lock, in a
 * statement whose text contains `statement` when given (a read that waits a moment on a lock of the server's own, as
 * while autovacuum truncates a table, is not the wait a test forced); returns its pid and query.
 */
export const blocked = (applicationName: string, excluded: ReadonlyArray<number> = [], what = "", statement = "") =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{ pid: number; query: string }>`
      select pid, query from pg_stat_activity
      where application_name = ${applicationName} and datname = current_database() and wait_event_type = 'Lock'
        and not (pid = any(${excluded}::int[])) and strpos(query, ${statement}::text) > 0`.pipe(
      Effect.repeat({
        until: (rows: ReadonlyArray<{ pid: number; query: string }>) => rows.length > 0,
        schedule: Schedule.spaced("10 millis"),
        times: 1000
      })
    )
    if (row === undefined) {
      const doing = yield* backends(applicationName)
      assert.fail(
        `${what}no backend of ${applicationName} waited on a lock${statement === "" ? "" : ` in a statement with '${statement}'`}: ${JSON.stringify(doing, null, 1)}`
      )
    }
    return row
  })

/**
 * `rounds` times: waits until a backend of the client named `applicationName` waits on a lock in a statement that
 * mentions `statement`, then terminates every backend of the client. Each round after the first waits for a new
 * backend: the subscription reconnected and came back to the same place.
 */
export const killWhenBlocked = (applicationName: string, statement: string, rounds = 2) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const killed: Array<number> = []
    for (let round = 1; round <= rounds; round++) {
      const { query } = yield* blocked(applicationName, killed, `round ${round}: `, statement)
      assert.include(query, statement, `round ${round}: blocked in another statement`)
      const pids = yield* sql<{ pid: number }>`
        select pid from pg_stat_activity where application_name = ${applicationName} and datname = current_database()`
      killed.push(...pids.map((row) => row.pid))
      assert.isAbove(yield* terminate(applicationName), 0, `round ${round}: nothing to kill`)
    }
  })

/**
 * Whether a backend of `applicationName` holds an advisory lock (a subscription's partition lock).
 */
export const holdsAdvisoryLock = (applicationName: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{ held: boolean }>`
      select exists(
        select 1 from pg_locks l join pg_stat_activity a using (pid)
        where a.application_name = ${applicationName} and a.datname = current_database()
          and l.locktype = 'advisory' and l.granted) as held`
    return row!.held
  })

/**
 * Runs `body` while a transaction of the test (on a connection of its own) has run `statements`: what they lock
 * stays locked until `body` ends, then the transaction rolls back.
 */
export const holding = <A, E, R>(
  statements: ReadonlyArray<Statement.Statement<unknown>>,
  body: Effect.Effect<A, E, R>
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const connection = yield* sql.reserve
      yield* Effect.addFinalizer(() => Effect.ignore(connection.executeUnprepared("rollback", [], undefined)))
      yield* connection.executeUnprepared("begin", [], undefined)
      for (const statement of statements) {
        const [text, params] = statement.compile()
        yield* connection.execute(text, params, undefined)
      }
      return yield* body
    })
  )

/**
 * One handling that completed, in the order the handler saw them.
 */
export interface Handled {
  readonly stream: string
  readonly version: number
  readonly transactionId: bigint
  readonly position: bigint
}

export const handledOf = (event: EventStore.RecordedEvent): Handled => ({
  stream: event.stream,
  version: event.streamVersion,
  transactionId: event.transactionId,
  position: event.position
})

const isAfter = (a: Handled, b: Handled) =>
  a.transactionId > b.transactionId || (a.transactionId === b.transactionId && a.position > b.position)

/**
 * What breaks per-stream order in a sequence of handlings. A step back in `(transactionId, position)` starts a
 * redelivery (from the checkpoint); between two of them, each stream's versions go up one at a time, and a stream's
 * first handling after a redelivery starts is at most one past the highest version of it handled so far.
 */
export const orderViolations = (handled: ReadonlyArray<Handled>): ReadonlyArray<string> => {
  const violations: Array<string> = []
  const highest = new Map<string, number>()
  let run = new Map<string, number>()
  let previous: Handled | undefined
  for (const [index, event] of handled.entries()) {
    if (previous !== undefined && !isAfter(event, previous)) run = new Map()
    const last = run.get(event.stream)
    if (last !== undefined && event.version !== last + 1) {
      violations.push(`#${index}: ${event.stream} version ${event.version} after ${last}`)
    }
    if (last === undefined && event.version > (highest.get(event.stream) ?? 0) + 1) {
      violations.push(`#${index}: ${event.stream} version ${event.version} with ${highest.get(event.stream) ?? 0}`)
    }
    run.set(event.stream, event.version)
    highest.set(event.stream, Math.max(event.version, highest.get(event.stream) ?? 0))
    previous = event
  }
  return violations
}

const describe = (error: unknown): string => {
  const links: Array<string> = []
  let current = error
  while (Predicate.isObject(current) && links.length < 5) {
    const name = String(Predicate.hasProperty(current, "_tag") ? current._tag : current.name)
    const reason =
      Predicate.hasProperty(current, "reason") && Predicate.hasProperty(current.reason, "_tag")
        ? `(${String(current.reason._tag)})`
        : ""
    links.push(`${name}${reason}: ${String(current.message)}`)
    current = Predicate.hasProperty(current, "cause") ? current.cause : undefined
  }
  if (current !== undefined) links.push(String(current))
  return links.join(" <- ")
}

/**
 * How a subscription's fiber ended, one line a reason: `Fail` (a typed error) or `Die` (a defect), each with its
 * chain of causes.
 */
export const describeExit = <E>(exit: Exit.Exit<never, E>): string =>
  Exit.isFailure(exit)
    ? exit.cause.reasons
        .map((reason) =>
          Cause.isFailReason(reason)
            ? `Fail(${describe(reason.error)})`
            : Cause.isDieReason(reason)
              ? `Die(${describe(reason.defect)})`
              : "Interrupt"
        )
        .join("; ")
    : "it succeeded"

/**
 * Runs `effect` while the subscription's fiber runs: fails at once, saying how the subscription ended, if it ends
 * first.
 */
export const whileRunning = <A, E, R, E2>(
  name: string,
  fiber: Fiber.Fiber<never, E2>,
  effect: Effect.Effect<A, E, R>
) =>
  Effect.raceFirst(
    effect,
    Effect.flatMap(Fiber.await(fiber), (exit) =>
      Effect.sync(() => assert.fail(`subscription '${name}' ended: ${describeExit(exit)}`))
    )
  )

/**
 * The backends of the client named `applicationName`, and the oldest transactions of the cluster that have an id (they
 * hold every subscription back: it reads no further than the oldest running transaction), for a failure's message.
 */
export const backends = (applicationName: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const own = yield* sql<{ backend: string }>`
      select concat_ws(' ', pid, state, wait_event_type, wait_event, left(query, 80)) as backend
      from pg_stat_activity where application_name = ${applicationName} and datname = current_database()`
    const oldest = yield* sql<{ backend: string }>`
      select concat_ws(' ', pid, datname, application_name, state, now() - xact_start, left(query, 80)) as backend
      from pg_stat_activity where backend_xid is not null order by xact_start limit 3`
    return {
      own: own.map((row) => row.backend.replaceAll(/\s+/g, " ")),
      oldestTransactions: oldest.map((row) => row.backend.replaceAll(/\s+/g, " "))
    }
  })

/**
 * Waits until the subscription has caught up; fails at once, with its cause, when the subscription's fiber ends
 * instead, and says what its backends were doing when it did not catch up in time.
 */
export const caughtUp = <E>(
  subs: Subscriptions.Subscriptions["Service"],
  name: string,
  applicationName: string,
  fiber: Fiber.Fiber<never, E>
) =>
  whileRunning(
    name,
    fiber,
    subs
      .waitUntilCaughtUp(name, { timeout: "30 seconds" })
      .pipe(
        Effect.catchTag("CaughtUpTimeout", (timeout) =>
          Effect.flatMap(backends(applicationName), (doing) =>
            Effect.sync(() => assert.fail(`${timeout.message}: ${JSON.stringify(doing, null, 1)}`))
          )
        )
      )
  )
