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
    // Rounded once: never 60 seconds or 60 minutes in a unit's place.
    assert.deepStrictEqual([0.9996, 59.6, 119.6, 3599.6, 86399.6].map(Render.seconds), [
      "1s",
      "1m 00s",
      "2m 00s",
      "1h 00m",
      "1d 0h"
    ])
  })

  it("stored text cannot drive the terminal: control characters and bidi overrides are shown, not obeyed", () => {
    const name = "task-1\x1b]0;pwned\x07\x1b[2J\u202egnp.exe"
    const line = Render.table([{ name }], [{ header: "STREAM", cell: (r) => r.name }], "")
    assert.strictEqual(line, "STREAM\ntask-1\\u001b]0;pwned\\u0007\\u001b[2J\\u202egnp.exe")
    assert.isFalse([...line].some((c) => c !== "\n" && (c.charCodeAt(0) < 0x20 || c === "\u202e")))
    assert.strictEqual(Render.excerpt("first line\nsecond\tline", 80), "first line second line")
    assert.strictEqual(Render.toJson({ position: 9007199254740993n }), '{"position":"9007199254740993"}')
  })
})
