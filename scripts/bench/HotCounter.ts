/**
 * The hot-stream workloads' domain: every command adds one to a counter kept in one stream. Workload 4 runs its decider
 * through in-process command handlers; the cluster workloads also declare it as a stream entity, so the runner
 * processes (`clusterRunner.ts`) handle the very same decider.
 */
import { StreamEntity } from "@evently/cluster"
import { EventCodec } from "@evently/store"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"

/** The counter's one event. */
export const Counted = Schema.Union([Schema.TaggedStruct("Counted", { by: Schema.Number })])

/** The decider: a command is the number of the worker that sent it; the state counts the events. */
export const counter = {
  initial: 0,
  decide: (by: number) => Result.succeed([{ _tag: "Counted" as const, by }]),
  evolve: (count: number) => count + 1
}

/** The counter as a stream entity of the bench's cluster (commands, events and state on the wire). */
export const HotCounter = StreamEntity.make("BenchCounter", {
  commands: Schema.Number,
  codec: EventCodec.make(Counted),
  state: Schema.Number
})
