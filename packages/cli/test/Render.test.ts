import { assert, describe, it } from "@effect/vitest"
import * as Progress from "../src/internal/progress.ts"
import * as Render from "../src/internal/render.ts"

describe("rendering", () => {
  it("a progress report: done, total, rate and the time left at that rate", () => {
    const p = { eventsDone: 2500, eventsTotal: 10000, eventsPerSecond: 500 }
    assert.strictEqual(Progress.describe(p), "2,500/10,000 events, 500 ev/s, ~15s left")
    assert.strictEqual(Progress.bar(p, 20), "[#####---------------]  25%  2,500/10,000 events, 500 ev/s, ~15s left")
    assert.strictEqual(Progress.describe({ ...p, eventsPerSecond: 0 }), "2,500/10,000 events, 0 ev/s, ~? left")
    assert.strictEqual(
      Progress.bar({ eventsDone: 0, eventsTotal: 0, eventsPerSecond: 0 }, 4),
      "[####] 100%  0/0 events, 0 ev/s, ~0s left"
    )
  })

  it("durations, tables and JSON with bigints", () => {
    assert.deepStrictEqual([0.25, 42, 200, 3 * 3600 + 125, 2 * 86400 + 7200].map(Render.seconds), [
      "250ms",
      "42s",
      "3m 20s",
      "3h 02m",
      "2d 2h"
    ])
    assert.strictEqual(
      Render.table(
        [
          { name: "a", n: 1 },
          { name: "bbb", n: 100 }
        ],
        [
          { header: "NAME", cell: (r) => r.name },
          { header: "N", cell: (r) => String(r.n), align: "right" }
        ],
        "none"
      ),
      "NAME    N\na       1\nbbb   100"
    )
    assert.strictEqual(Render.table([], [], "none"), "none")
    assert.strictEqual(Render.toJson({ position: 9007199254740993n }), '{"position":"9007199254740993"}')
  })
})
