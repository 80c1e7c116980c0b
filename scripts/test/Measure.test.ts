import { assert, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import { TaskMachine } from "task-list/src/TaskMachine.ts"
import { measure, percentile, summarize } from "../bench/Measure.ts"
import { taskHistory, workloads } from "../bench/Workloads.ts"

describe("Measure", () => {
  it("percentile is nearest-rank", () => {
    const sorted = Array.from({ length: 100 }, (_, i) => i + 1)
    expect(percentile(sorted, 50)).toBe(50)
    expect(percentile(sorted, 99)).toBe(99)
    expect(percentile(sorted, 100)).toBe(100)
    expect(percentile([7], 50)).toBe(7)
    expect(percentile([7], 99)).toBe(7)
    expect(percentile([], 50)).toBeNaN()
  })

  it("summarize sorts the latencies and derives rates from events, seconds and CPU time", () => {
    const m = summarize({ latencies: [5, 1, 4, 2, 3], events: 50, seconds: 2, cpuMicros: 100_000 })
    expect(m).toEqual({
      events: 50,
      operations: 5,
      seconds: 2,
      eventsPerSecond: 25,
      p50Ms: 3,
      p99Ms: 5,
      cpuSecondsPer1k: 2
    })
  })

  it.effect("measure counts every operation once, with each worker's own sequence and the events it reports", () =>
    Effect.gen(function* () {
      const sequences: Array<Array<number>> = [[], [], []]
      const m = yield* measure({
        concurrency: 3,
        seconds: 0.05,
        warmupSeconds: 0,
        eventsPerOperation: 5,
        // Worker 0 reports 2 events per operation; the others return nothing, so the fixed 5 applies. Each operation
        // yields, as a real one (a query) does: a synchronous one could run out the clock in the first worker alone
        // on a busy machine, before the others start.
        operation: (worker, sequence) =>
          Effect.andThen(
            Effect.yieldNow,
            Effect.sync(() => {
              sequences[worker]!.push(sequence)
              return worker === 0 ? 2 : undefined
            })
          )
      })
      const calls = sequences.map((s) => s.length)
      assert.strictEqual(m.operations, calls[0]! + calls[1]! + calls[2]!)
      assert.strictEqual(m.events, calls[0]! * 2 + (calls[1]! + calls[2]!) * 5)
      for (const s of sequences) {
        assert.isAbove(s.length, 0)
        assert.deepStrictEqual(
          s,
          Array.from({ length: s.length }, (_, i) => i)
        )
      }
    })
  )
})

describe("Workloads", () => {
  it("every variant of a workload handles the workload's number of events per operation, beside a baseline", () => {
    const ids = new Set<string>()
    for (const workload of workloads) {
      ids.add(workload.id)
      const variants = Object.entries(workload.variants)
      expect(variants.some(([name]) => name === "R0" || name === "R1")).toBe(true)
      expect(variants.some(([name]) => name.startsWith("evently"))).toBe(true)
      for (const [name, variant] of variants) {
        expect({ workload: workload.id, name, events: variant.eventsPerOperation }).toEqual({
          workload: workload.id,
          name,
          events: workload.eventsPerOperation
        })
      }
    }
    expect(ids.size).toBe(workloads.length)
  })

  it("the read workload's task history is 100 events the task machine accepts", () => {
    expect(taskHistory.length).toBe(100)
    const folded = TaskMachine.fold(taskHistory)
    expect(Result.isSuccess(folded) && folded.success.eventCount).toBe(100)
    expect(Result.isSuccess(folded) && folded.success.tags).toEqual(["Completed"])
  })
})
