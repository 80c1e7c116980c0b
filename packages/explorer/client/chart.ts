/**
 * The lag chart: one line per subscription, the events behind over the samples the server kept.
 */
import { s } from "./dom.ts"
import type { Status } from "./models.ts"

const width = 480
const height = 120
const colors = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"]

/** The chart of `history`, or a line saying there is nothing to draw yet. */
export const lagChart = (history: Status["history"]): SVGElement => {
  const names = [...new Set(history.flatMap((sample) => Object.keys(sample.lag)))].sort()
  const first = history[0]?.at ?? 0
  const last = history[history.length - 1]?.at ?? 1
  const span = Math.max(1, last - first)
  const top = Math.max(1, ...history.flatMap((sample) => Object.values(sample.lag)))
  const x = (at: number) => 40 + ((at - first) / span) * (width - 50)
  const y = (lag: number) => height - 20 - (lag / top) * (height - 30)
  const lines = names.map((name, i) =>
    s("polyline", {
      points: history
        .filter((sample) => Object.hasOwn(sample.lag, name)) // not `in`: a subscription may be named `toString`
        .map((sample) => `${x(sample.at).toFixed(1)},${y(sample.lag[name]!).toFixed(1)}`)
        .join(" "),
      fill: "none",
      stroke: colors[i % colors.length]!,
      "stroke-width": 2
    })
  )
  const legend = names.map((name, i) =>
    s("text", { x: 40 + i * 120, y: height - 2, fill: colors[i % colors.length]! }, name)
  )
  return s(
    "svg",
    { class: "chart", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "Lag over time" },
    s("line", { x1: 40, y1: height - 20, x2: width - 10, y2: height - 20, stroke: "#999" }),
    s("text", { x: 2, y: 14 }, String(top)),
    s("text", { x: 2, y: height - 20 }, "0"),
    ...lines,
    ...legend
  )
}
