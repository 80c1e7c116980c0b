/**
 * A group of commands on one stream handled together (the commands that queued for the stream's turn): one load,
 * then each command decided in queue order against the state the ones before it left, then one append of all their
 * events with the exact version loaded, each event carrying its own command's ids and headers. Every command gets
 * the outcome it would have had alone in that order: its own events, positions, version and state, or its refusal.
 *
 * What a group cannot settle exactly is handled alone afterwards, in the same turn: a command id already in the
 * stream or twice in the group (its first handling is looked up), a refusal that a snapshot may hide an earlier
 * handling of, and, when the group's append fails for a reason of its own (another writer moved the stream, an event
 * the store rejects, an event id stored already), every command of the group. So one bad command never fails the
 * others, and a conflict is retried by each command under its own retry policy. A store failure (a lost connection)
 * fails every command of the group, as it would have failed each one alone.
 */
import type { Decider } from "@evently/machine"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import type * as Schedule from "effect/Schedule"
import type * as Tracer from "effect/Tracer"
import * as SqlClient from "effect/sql/SqlClient"
import type { Handled } from "../../CommandHandler.ts"
import type * as EventCodec from "../../EventCodec.ts"
import * as EventStore from "../../EventStore.ts"
import * as ExpectedVersion from "../../ExpectedVersion.ts"
import type * as StreamName from "../../StreamName.ts"
import type { Known, Load } from "./loading.ts"
import type { Snapshotting } from "./snapshotting.ts"
import type { StateCache } from "./stateCache.ts"
import type { Queued } from "./turns.ts"

/** A command waiting for its stream's turn, with what it needs to be handled there. */
export interface Member<Command, Event, State, E> extends Queued<Handled<Event, State>, E> {
  readonly stream: StreamName.StreamName
  readonly command: Command
  readonly givenId: string | undefined
  readonly commandId: string
  readonly metadata: EventStore.Metadata
  readonly schedule: Schedule.Schedule<unknown>
  /** The loads-decides-appends made for it so far (a group's counts as one for each of its commands). */
  attempts: number
  /** Its caller's span (`CommandHandler.handle`): what a group links to, and the parent of its work when alone. */
  readonly span: Tracer.Span | undefined
}

/**
 * Whether the caller is in a SQL transaction (of the `SqlClient` in its context): then its append joins that
 * transaction, so it must not carry other callers' events, nor be carried by another caller's append.
 */
export const inSqlTransaction: Effect.Effect<boolean> = Effect.flatMap(
  Effect.serviceOption(SqlClient.SqlClient),
  (sql) =>
    Option.isNone(sql)
      ? Effect.succeed(false)
      : Effect.map(Effect.serviceOption(sql.value.transactionService), Option.isSome)
)

/** What one command of a group came to before the append. */
type Decided<Event, State, E> =
  | { readonly _tag: "Alone" }
  | { readonly _tag: "Settled"; readonly exit: Exit.Exit<never, E> }
  | {
      readonly _tag: "Events"
      readonly events: ReadonlyArray<Event>
      readonly start: number
      readonly version: number
      readonly state: State
    }

const Alone = { _tag: "Alone" } as const

/** The group handling of one handler. */
export const make = <Command, Event extends { readonly _tag: string }, State, Error, E>(deps: {
  readonly typed: EventCodec.TypedEventStore<Event>
  readonly decider: Decider.Decider<Command, Event, State, Error>
  readonly loadStream: (
    stream: StreamName.StreamName,
    commandIds: ReadonlySet<string>
  ) => Effect.Effect<Load<Event, State>, E>
  readonly snapshotting: Snapshotting<State>
  readonly cache: StateCache<StreamName.StreamName, Known<State>>
  readonly eventId: (stream: string, commandId: string, index: number) => string
  /** Handles one command by itself (load, decide, append, retries), in the turn already held. */
  readonly alone: (member: Member<Command, Event, State, Error | E>) => Effect.Effect<Handled<Event, State>, Error | E>
}) => {
  type M = Member<Command, Event, State, Error | E>
  const { typed, decider } = deps

  /**
   * Handles each member by itself, in the turn held. Its work is traced under its own caller's span, not under that
   * of whichever fiber drains the queue.
   */
  const aloneEach = (members: ReadonlyArray<M>) =>
    Effect.forEach(
      members,
      (member) => {
        const alone =
          member.span === undefined ? deps.alone(member) : Effect.withParentSpan(deps.alone(member), member.span)
        return Effect.exit(alone).pipe(Effect.flatMap((exit) => Deferred.done(member.done, exit)))
      },
      { discard: true }
    )

  /** Decides each member in order against the state the ones before it left. */
  const decideAll = (name: StreamName.StreamName, members: ReadonlyArray<M>, { loaded, found }: Load<Event, State>) => {
    let state = loaded.state
    let version = loaded.version
    const seen = new Set<string>()
    const events: Array<EventCodec.TypedNewEvent<Event>> = []
    const decided = members.map((member): Decided<Event, State, Error> => {
      const id = member.givenId
      if (id !== undefined && (found.has(id) || seen.has(id))) return Alone
      if (id !== undefined) seen.add(id)
      let next = state
      let outcome: ReturnType<typeof decider.decide>
      try {
        outcome = decider.decide(member.command, state)
        if (outcome._tag === "Success") for (const event of outcome.success) next = decider.evolve(next, event)
      } catch (defect) {
        return { _tag: "Settled", exit: Exit.die(defect) }
      }
      if (outcome._tag === "Failure") {
        // A snapshot may hide an earlier handling of this command: alone, it looks before refusing.
        return id !== undefined && loaded.startVersion > 0
          ? Alone
          : { _tag: "Settled", exit: Exit.fail(outcome.failure) }
      }
      const start = events.length
      outcome.success.forEach((event, index) =>
        events.push({ event, eventId: deps.eventId(name, member.commandId, index), metadata: member.metadata })
      )
      state = next
      version += outcome.success.length
      return { _tag: "Events", events: outcome.success, start, version, state }
    })
    return { decided, events, state, version }
  }

  /** Handles `members` (queued on `name`, more than one) and completes each one's `done`. */
  const handleGroup = Effect.fnUntraced(function* (name: StreamName.StreamName, members: ReadonlyArray<M>) {
    for (const member of members) {
      member.attempts++
      member.span?.attribute("group", members.length)
    }
    const ids = new Set(members.flatMap((member) => (member.givenId === undefined ? [] : [member.givenId])))
    const load = yield* deps.loadStream(name, ids)
    const { decided, events, state, version } = decideAll(name, members, load)
    const { loaded } = load
    let positions: ReadonlyArray<bigint> = []
    if (events.length > 0) {
      const appended = yield* Effect.exit(
        typed.append(name, events, { expected: ExpectedVersion.Exact(loaded.version) })
      )
      if (Exit.isFailure(appended)) {
        const storeFailure = appended.cause.reasons.some(
          (reason) => reason._tag === "Fail" && reason.error instanceof EventStore.StoreError
        )
        if (storeFailure) {
          // E holds StoreError: it is one of the errors of a load.
          const failed = appended as unknown as Exit.Exit<never, E>
          return yield* Effect.forEach(members, (member) => Deferred.done(member.done, failed), { discard: true })
        }
        return yield* aloneEach(members)
      }
      // The store replayed an earlier append of these ids: not ours to describe; each alone finds its first handling.
      if (appended.value.version !== version) return yield* aloneEach(members)
      positions = appended.value.positions
      const saved = yield* deps.snapshotting.save(name, loaded, version, state)
      const last = events[events.length - 1]!
      deps.cache.set({
        ...loaded,
        version,
        state,
        snapshotVersion: saved ? version : loaded.snapshotVersion,
        eventsRead: 0,
        lastEventId: last.eventId
      })
    }
    const later: Array<M> = []
    yield* Effect.forEach(
      members,
      (member, index) => {
        const outcome = decided[index]!
        switch (outcome._tag) {
          case "Alone":
            later.push(member)
            return Effect.void
          case "Settled":
            return Deferred.done(member.done, outcome.exit)
          case "Events":
            return Deferred.succeed(member.done, {
              stream: name,
              version: outcome.version,
              events: outcome.events,
              positions: positions.slice(outcome.start, outcome.start + outcome.events.length),
              state: outcome.state,
              attempts: member.attempts,
              duplicate: false
            })
        }
      },
      { discard: true }
    )
    yield* aloneEach(later)
  })

  /**
   * A group's work (its load, its append) in a span of its own, `CommandHandler.group`, linked to each of its
   * commands' spans: it belongs to all of them, so it is the root of a trace of its own rather than a child of the
   * caller that happens to drain the queue (the way OpenTelemetry traces a batch).
   */
  const traced = <A, X, R>(name: StreamName.StreamName, members: ReadonlyArray<M>, effect: Effect.Effect<A, X, R>) =>
    Effect.withSpan(effect, "CommandHandler.group", {
      root: true,
      attributes: { stream: name, "group.size": members.length },
      links: members.flatMap((member) =>
        member.span === undefined ? [] : [{ span: member.span, attributes: { "command.id": member.commandId } }]
      )
    })

  /** Handles the commands queued on a stream: alone when there is one, else as a group. */
  return (name: StreamName.StreamName, members: ReadonlyArray<M>): Effect.Effect<void> =>
    (members.length === 1 ? aloneEach(members) : traced(name, members, handleGroup(name, members))).pipe(
      Effect.catchCause((cause) =>
        Effect.forEach(members, (member) => Deferred.failCause(member.done, cause), { discard: true })
      )
    )
}
