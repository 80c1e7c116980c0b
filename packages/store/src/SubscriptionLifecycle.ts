/**
 * The lifecycle of a running subscription, per partition: `Started`, `Standby` while another worker holds the
 * partition, `TookOver` when it gets it, `CatchingUp` with the events behind and done, `CaughtUp` once it reached the
 * head as of its session's start (then live), `Recovering` after a fault, `Stopped` when the run ends. `run` reports
 * it as a `Stream` (`Subscriptions.lifecycle`), as log lines at info level and as metrics.
 *
 * The adapters' sessions tell `run` what they know through {@link SessionSignals} (the lease waits or is taken, the
 * session is positioned with so many events behind, a read came back empty); one tracker per running partition, here,
 * turns those signals and the batches `run` handled into phases, so the logic lives once for every adapter.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as PubSub from "effect/PubSub"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as EventStore from "./EventStore.ts"
import * as KeyedLock from "./KeyedLock.ts"

/**
 * A place in the log, as `Subscriptions.Checkpoint`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Place {
  readonly transactionId: bigint
  readonly position: bigint
}

/**
 * A partition's phase. `Standby.heldByPid` is the database backend pid of the session holding the partition when the
 * adapter knows it (Postgres), `undefined` when the holder is in this process or unknown. `CatchingUp` counts the
 * matching events `behind` the head as of the session's start and those `done` so far; `CaughtUp` the `events`
 * handled to get there and the `seconds` it took. `Recovering.attempt` counts `run`'s restarts without progress (0
 * when the adapter reconnects a session by itself).
 *
 * @since 0.1.0
 * @category models
 */
export const Phase = Schema.TaggedUnion({
  Started: {},
  Standby: { heldByPid: Schema.UndefinedOr(Schema.Number) },
  TookOver: { waitedSeconds: Schema.Number },
  CatchingUp: { behind: Schema.Number, done: Schema.Number },
  CaughtUp: { events: Schema.Number, seconds: Schema.Number },
  Recovering: { reason: Schema.String, attempt: Schema.Number },
  Stopped: { reason: Schema.String }
})

/**
 * @since 0.1.0
 * @category models
 */
export type Phase = typeof Phase.Type

/**
 * One change of a partition's phase: which subscription and partition, which `worker` (a number unique within the
 * service, telling apart two runs of one partition, such as an active one and a standby), its `sequence` among all
 * lifecycle events of the service, and when (`at`, epoch milliseconds).
 *
 * @since 0.1.0
 * @category models
 */
export const LifecycleEvent = Schema.Struct({
  subscription: Schema.String,
  partition: Schema.Number,
  worker: Schema.Number,
  sequence: Schema.Number,
  at: Schema.Number,
  phase: Phase
})

/**
 * @since 0.1.0
 * @category models
 */
export type LifecycleEvent = typeof LifecycleEvent.Type

/**
 * What a session of an adapter tells `run` about itself. Each is cheap, and none needs a query of its own except
 * `positioned`'s count, made once per session (adapters skip it when `active` is false: nobody is listening).
 *
 * @since 0.1.0
 * @category signals
 */
export interface Signals {
  readonly active: boolean
  /** The partition is held by another worker (its backend pid when known); the session waits. */
  readonly leaseWaiting: (heldByPid: number | undefined) => Effect.Effect<void>
  /** The session holds the partition now. */
  readonly leaseTaken: Effect.Effect<void>
  /** The session starts reading after `checkpoint`, with `behind` matching events before the head as of now. */
  readonly positioned: (checkpoint: Place, behind: number) => Effect.Effect<void>
  /** A read found nothing after the last batch the session delivered (or its checkpoint, before any batch). */
  readonly readEmpty: (lastDelivered: Place) => Effect.Effect<void>
  /** The session ended with a fault and the adapter starts a new one. */
  readonly reconnecting: (reason: string) => Effect.Effect<void>
}

const noSignals: Signals = {
  active: false,
  leaseWaiting: () => Effect.void,
  leaseTaken: Effect.void,
  positioned: () => Effect.void,
  readEmpty: () => Effect.void,
  reconnecting: () => Effect.void
}

/**
 * Where a session sends its {@link Signals}: `run` provides one per partition; outside `run` they go nowhere.
 *
 * @since 0.1.0
 * @category signals
 */
export const SessionSignals = Context.Reference<Signals>("@evently/store/SubscriptionLifecycle/SessionSignals", {
  defaultValue: () => noSignals
})

/**
 * Takes `key` of `locks` until the scope closes, signalling `leaseWaiting` first when another fiber of this process
 * holds it: the in-process half of "one worker per partition".
 *
 * @since 0.1.0
 * @category signals
 */
export const takeLocalLease = (locks: LocalLeases, key: string): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function* () {
    if (locks.held.has(key)) yield* (yield* SessionSignals).leaseWaiting(undefined)
    yield* locks.locks.takeScoped(key)
    locks.held.add(key)
    yield* Effect.addFinalizer(() => Effect.sync(() => locks.held.delete(key)))
  })

/**
 * The partitions held in this process, for {@link takeLocalLease}.
 *
 * @since 0.1.0
 * @category signals
 */
export interface LocalLeases {
  readonly locks: KeyedLock.KeyedLock<string>
  readonly held: Set<string>
}

/**
 * A new set of {@link LocalLeases}.
 *
 * @since 0.1.0
 * @category signals
 */
export const makeLocalLeases = (): LocalLeases => ({ locks: KeyedLock.makeUnsafe<string>(), held: new Set() })

/**
 * The phase of each running subscription partition: 1 for its current phase (attribute `phase`), 0 for the others.
 *
 * @since 0.1.0
 * @category metrics
 */
export const phaseGauge = Metric.gauge("evently_subscription_phase", {
  description: "1 for the current phase of the subscription partition (attribute phase), 0 for the others"
})

/**
 * How many times a standby took a partition over.
 *
 * @since 0.1.0
 * @category metrics
 */
export const takeovers = Metric.counter("evently_subscription_takeovers", {
  description: "Times a standby worker took the subscription partition over"
})

/**
 * Events handled while catching up.
 *
 * @since 0.1.0
 * @category metrics
 */
export const catchUpEvents = Metric.counter("evently_subscription_catch_up_events", {
  description: "Events the subscription partition handled while catching up"
})

/**
 * How many times `run` started a partition over after a fault.
 *
 * @since 0.1.0
 * @category metrics
 */
export const recoveries = Metric.counter("evently_subscription_recoveries", {
  description: "Times the subscription partition started over after a fault"
})

/**
 * The age in seconds of the last event a live partition handled (how far behind the writers it runs).
 *
 * @since 0.1.0
 * @category metrics
 */
export const liveLagSeconds = Metric.gauge("evently_subscription_live_lag_seconds", {
  description: "Age of the last event the live subscription partition handled"
})

/**
 * How a run reports its lifecycle: a progress line (and a `CatchingUp` event) every `progressInterval` of a long
 * catch-up (default 5 seconds), and a warning when a live partition handles an event older than `lagThreshold`
 * (default 30 seconds).
 *
 * @since 0.1.0
 * @category models
 */
export interface Reporting {
  readonly progressInterval?: Duration.Input | undefined
  readonly lagThreshold?: Duration.Input | undefined
}

/**
 * What is wrong with a {@link Reporting}, or `undefined` when nothing is.
 *
 * @since 0.1.0
 * @category validation
 */
export const reportingProblem = (reporting: Reporting | undefined): string | undefined => {
  for (const key of ["progressInterval", "lagThreshold"] as const) {
    const input = reporting?.[key]
    if (input === undefined) continue
    const duration = Duration.fromInput(input)
    if (duration._tag === "None" || !Duration.isFinite(duration.value) || Duration.toMillis(duration.value) < 1) {
      return `${key} must be a finite duration of at least 1 millisecond, not ${String(input)}`
    }
  }
  return undefined
}

/**
 * The lifecycle of one running partition, as `run` drives it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Tracker {
  readonly signals: Signals
  /** A batch was handled and committed. */
  readonly handled: (events: ReadonlyArray<EventStore.RecordedEvent>, checkpoint: Place) => Effect.Effect<void>
  /** `run` starts the partition over after `delay`. */
  readonly recovering: (reason: string, attempt: number) => Effect.Effect<void>
  /** The run ended. */
  readonly stopped: (reason: string) => Effect.Effect<void>
}

/**
 * The lifecycles of a service's running partitions: trackers for `run`, and what `Subscriptions.lifecycle` and
 * `Subscriptions.phases` read.
 *
 * @since 0.1.0
 * @category models
 */
export interface Lifecycles {
  /** Registers a running partition and reports `Started`. */
  readonly track: (subscription: string, partition: number, reporting: Reporting | undefined) => Effect.Effect<Tracker>
  /** The current phase of each partition running in this process (of `subscription`, or all), then every change. */
  readonly events: (subscription?: string) => Stream.Stream<LifecycleEvent>
  /** The current phase of each partition running in this process (of `subscription`, or all). */
  readonly current: (subscription?: string) => Effect.Effect<ReadonlyArray<LifecycleEvent>>
}

/**
 * Makes the lifecycles of a service.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<Lifecycles> = Effect.gen(function* () {
  const pubsub = yield* PubSub.unbounded<LifecycleEvent>()
  const running = new Map<number, LifecycleEvent>()
  let sequence = 0
  let workers = 0
  const publish = (event: Omit<LifecycleEvent, "sequence">, ended: boolean): LifecycleEvent => {
    const numbered = { ...event, sequence: ++sequence }
    if (ended) running.delete(event.worker)
    else running.set(event.worker, numbered)
    PubSub.publishUnsafe(pubsub, numbered)
    return numbered
  }
  // A change of a phase's figures that is not a change of phase (a catch-up's progress): seen by the next snapshot.
  const update = (worker: number, phase: Phase) => {
    const known = running.get(worker)
    if (known !== undefined) running.set(worker, { ...known, phase })
  }
  const snapshot = (subscription: string | undefined) =>
    [...running.values()]
      .filter((event) => subscription === undefined || event.subscription === subscription)
      .sort((a, b) => a.sequence - b.sequence)
  return {
    track: (subscription, partition, reporting) =>
      Effect.suspend(() => {
        const tracker = new PartitionTracker({ subscription, partition, worker: ++workers, reporting, publish, update })
        return Effect.as(tracker.start, tracker)
      }),
    current: (subscription) => Effect.sync(() => snapshot(subscription)),
    events: (subscription) =>
      Stream.unwrap(
        Effect.gen(function* () {
          const changes = yield* PubSub.subscribe(pubsub)
          // Taken after subscribing: a change numbered up to `upTo` is in the snapshot, any later one comes after.
          const upTo = sequence
          const now = snapshot(subscription)
          return Stream.concat(
            Stream.fromIterable(now),
            Stream.fromSubscription(changes).pipe(
              Stream.filter(
                (event) => event.sequence > upTo && (subscription === undefined || event.subscription === subscription)
              )
            )
          )
        })
      )
  }
})

interface TrackerOptions {
  readonly subscription: string
  readonly partition: number
  readonly worker: number
  readonly reporting: Reporting | undefined
  readonly publish: (event: Omit<LifecycleEvent, "sequence">, ended: boolean) => LifecycleEvent
  readonly update: (worker: number, phase: Phase) => void
}

const phaseTags = Object.keys(Phase.cases) as ReadonlyArray<Phase["_tag"]>

const isBefore = (a: Place, b: Place) =>
  a.transactionId < b.transactionId || (a.transactionId === b.transactionId && a.position < b.position)

const format = (millis: number) => Duration.format(Duration.millis(Math.round(millis)))

const now = Clock.currentTimeMillis

// One running partition's phase, moved by its session's signals and by the batches `run` handled.
class PartitionTracker implements Tracker {
  readonly signals: Signals
  private readonly options: TrackerOptions
  private readonly attributes: { readonly subscription: string; readonly partition: string }
  // The per-batch metrics, tagged once (a tagged metric computes its series key on its first update and keeps it).
  private readonly catchUpEvents: Metric.Metric<number, unknown>
  private readonly liveLagSeconds: Metric.Metric<number, unknown>
  private readonly label: string
  private readonly progressEvery: number
  private readonly lagThreshold: number
  private phase: Phase = Phase.cases.Started.make({})
  private gauged: Phase["_tag"] | undefined
  private standbySince = 0
  private sessionStart = 0
  private lastProgress = 0
  private behind = 0
  private done = 0
  // The checkpoint of the last batch handled, and where a read came back empty while batches were still pending.
  private handledTo: Place | undefined
  private emptyAt: Place | undefined
  private lagging = false

  constructor(options: TrackerOptions) {
    this.options = options
    this.attributes = { subscription: options.subscription, partition: String(options.partition) }
    this.catchUpEvents = Metric.withAttributes(catchUpEvents, this.attributes)
    this.liveLagSeconds = Metric.withAttributes(liveLagSeconds, this.attributes)
    this.label = `Subscription '${options.subscription}' partition ${options.partition}`
    this.progressEvery = Duration.toMillis(Duration.fromInputUnsafe(options.reporting?.progressInterval ?? "5 seconds"))
    this.lagThreshold = Duration.toMillis(Duration.fromInputUnsafe(options.reporting?.lagThreshold ?? "30 seconds"))
    this.signals = {
      active: true,
      leaseWaiting: (heldByPid) => Effect.flatMap(now, (at) => this.standby(heldByPid, at)),
      leaseTaken: Effect.flatMap(now, (at) => this.tookOver(at)),
      positioned: (checkpoint, behind) => Effect.flatMap(now, (at) => this.positioned(checkpoint, behind, at)),
      readEmpty: (lastDelivered) => Effect.flatMap(now, (at) => this.readEmpty(lastDelivered, at)),
      reconnecting: (reason) => this.recovering(reason, 0)
    }
  }

  get start(): Effect.Effect<void> {
    return Effect.flatMap(now, (at) => Effect.andThen(this.enter(this.phase, at), this.log("started")))
  }

  handled(events: ReadonlyArray<EventStore.RecordedEvent>, checkpoint: Place): Effect.Effect<void> {
    return Effect.flatMap(now, (at) => {
      this.handledTo = checkpoint
      if (this.phase._tag === "CaughtUp") return this.liveLag(events, at)
      if (this.phase._tag !== "CatchingUp") return Effect.void
      this.done += events.length
      const counted = Metric.update(this.catchUpEvents, events.length)
      if (this.done >= this.behind || (this.emptyAt !== undefined && !isBefore(checkpoint, this.emptyAt))) {
        return Effect.andThen(counted, this.caughtUp(at))
      }
      if (at - this.lastProgress >= this.progressEvery) return Effect.andThen(counted, this.progress(at))
      this.options.update(this.options.worker, Phase.cases.CatchingUp.make({ behind: this.behind, done: this.done }))
      return counted
    })
  }

  recovering(reason: string, attempt: number): Effect.Effect<void> {
    return Effect.flatMap(now, (at) =>
      Effect.andThen(
        this.enter(Phase.cases.Recovering.make({ reason, attempt }), at),
        Metric.update(Metric.withAttributes(recoveries, this.attributes), 1)
      )
    )
  }

  stopped(reason: string): Effect.Effect<void> {
    return Effect.flatMap(now, (at) =>
      Effect.andThen(this.enter(Phase.cases.Stopped.make({ reason }), at), this.log(`stopped: ${reason}`))
    )
  }

  private log(message: string) {
    return Effect.logInfo(`${this.label}: ${message}`)
  }

  // The phase changes and is published at once (so in order), then the gauge follows when the tag changed.
  private enter(next: Phase, at: number): Effect.Effect<void> {
    this.phase = next
    const { subscription, partition, worker } = this.options
    this.options.publish({ subscription, partition, worker, at, phase: next }, next._tag === "Stopped")
    if (this.gauged === next._tag) return Effect.void
    this.gauged = next._tag
    return Effect.forEach(
      phaseTags,
      (tag) =>
        Metric.update(
          Metric.withAttributes(phaseGauge, { ...this.attributes, phase: tag }),
          tag === next._tag && tag !== "Stopped" ? 1 : 0
        ),
      { discard: true }
    )
  }

  private standby(heldByPid: number | undefined, at: number): Effect.Effect<void> {
    const phase = this.phase
    if (phase._tag === "Standby" && (heldByPid === undefined || phase.heldByPid === heldByPid)) return Effect.void
    if (phase._tag !== "Standby") this.standbySince = at
    const holder = heldByPid === undefined ? "another worker" : `backend pid ${heldByPid}`
    return Effect.andThen(
      this.enter(Phase.cases.Standby.make({ heldByPid }), at),
      this.log(`standing by: the partition is held by ${holder}`)
    )
  }

  private tookOver(at: number): Effect.Effect<void> {
    if (this.phase._tag !== "Standby") return Effect.void
    const waited = Math.max(0, at - this.standbySince)
    return Effect.all([
      this.enter(Phase.cases.TookOver.make({ waitedSeconds: waited / 1000 }), at),
      Metric.update(Metric.withAttributes(takeovers, this.attributes), 1),
      this.log(`took over after ${format(waited)}`)
    ])
  }

  private positioned(checkpoint: Place, behind: number, at: number): Effect.Effect<void> {
    this.sessionStart = this.lastProgress = at
    this.behind = behind
    this.done = 0
    this.handledTo = checkpoint
    this.emptyAt = undefined
    if (behind === 0) return this.caughtUp(at)
    return Effect.andThen(
      this.enter(Phase.cases.CatchingUp.make({ behind, done: 0 }), at),
      this.log(`catching up: ${behind} events behind`)
    )
  }

  // Caught up once every batch delivered before the empty read has been handled.
  private readEmpty(lastDelivered: Place, at: number): Effect.Effect<void> {
    if (this.phase._tag === "CaughtUp") this.lagging = false
    if (this.phase._tag !== "CatchingUp") return Effect.void
    if (this.handledTo !== undefined && !isBefore(this.handledTo, lastDelivered)) return this.caughtUp(at)
    this.emptyAt = lastDelivered
    return Effect.void
  }

  private caughtUp(at: number): Effect.Effect<void> {
    const took = Math.max(0, at - this.sessionStart)
    const rate = took === 0 ? "" : ` at ${Math.round((this.done * 1000) / took)} ev/s`
    return Effect.andThen(
      this.enter(Phase.cases.CaughtUp.make({ events: this.done, seconds: took / 1000 }), at),
      this.log(
        this.done === 0
          ? "caught up: nothing to catch up; live"
          : `caught up: ${this.done} events in ${format(took)}${rate}; live`
      )
    )
  }

  private progress(at: number): Effect.Effect<void> {
    this.lastProgress = at
    const rate = this.done / Math.max(0.001, (at - this.sessionStart) / 1000)
    const left = rate > 0 ? `, about ${Math.ceil((this.behind - this.done) / rate)} s left` : ""
    return Effect.andThen(
      this.enter(Phase.cases.CatchingUp.make({ behind: this.behind, done: this.done }), at),
      this.log(`catching up: ${this.done} of ${this.behind} events, ${Math.round(rate)} ev/s${left}`)
    )
  }

  // Warns once when a live partition handles an event older than the threshold, again after it got back under it.
  private liveLag(events: ReadonlyArray<EventStore.RecordedEvent>, at: number): Effect.Effect<void> {
    const last = events[events.length - 1]
    if (last === undefined) return Effect.void
    const lag = Math.max(0, at - DateTime.toEpochMillis(last.recordedAt))
    const gauge = Metric.update(this.liveLagSeconds, lag / 1000)
    const wasLagging = this.lagging
    this.lagging = lag > this.lagThreshold
    if (!this.lagging || wasLagging) return gauge
    return Effect.andThen(
      gauge,
      Effect.logWarning(
        `${this.label}: falling behind: the last event it handled is ${format(lag)} old (threshold ${format(this.lagThreshold)})`
      )
    )
  }
}
