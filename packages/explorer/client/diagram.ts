/**
 * A machine's graph drawn as SVG: control states in columns by their distance from the empty state, transitions as
 * arrows labelled with their event, and, for one stream, the states it went through, the transitions it took and
 * the transitions allowed next highlighted. Labels are text nodes.
 */
import { s } from "./dom.ts"
import type { GraphTransition, MachineView } from "./models.ts"

const columnWidth = 220
const rowHeight = 90
const nodeHeight = 36

const key = (t: GraphTransition) => `${t.from} --${t.event}--> ${t.to}`

const layers = (view: MachineView): Map<string, { column: number; row: number }> => {
  const initial = view.graph.states.find((n) => n.initial)?.key ?? "*"
  const depth = new Map<string, number>([[initial, 0]])
  const queue = [initial]
  while (queue.length > 0) {
    const from = queue.shift()!
    for (const t of view.graph.transitions) {
      if (t.from === from && !depth.has(t.to)) {
        depth.set(t.to, depth.get(from)! + 1)
        queue.push(t.to)
      }
    }
  }
  const rows = new Map<number, number>()
  const place = new Map<string, { column: number; row: number }>()
  for (const node of view.graph.states) {
    const column = depth.get(node.key) ?? 0
    const row = rows.get(column) ?? 0
    rows.set(column, row + 1)
    place.set(node.key, { column, row })
  }
  return place
}

const label = (tags: ReadonlyArray<string>) => (tags.length === 0 ? "(empty)" : tags.join(", "))

/** The diagram of `view`, with `view.path` highlighted when there is one. */
export const diagram = (view: MachineView): SVGElement => {
  const place = layers(view)
  const visited = new Set(view.path?.states ?? [])
  const taken = new Map((view.path?.transitions ?? []).map((t) => [t.key, t.count]))
  const current = view.path?.current
  const center = (k: string) => {
    const p = place.get(k) ?? { column: 0, row: 0 }
    return { x: 20 + p.column * columnWidth + 80, y: 30 + p.row * rowHeight + nodeHeight / 2 }
  }
  const columns = Math.max(...[...place.values()].map((p) => p.column)) + 1
  const rows = Math.max(...[...place.values()].map((p) => p.row)) + 1
  const edges = view.graph.transitions.map((t) => {
    const a = center(t.from)
    const b = center(t.to)
    const count = taken.get(key(t))
    const allowed = current !== undefined && t.from === current
    const cls = ["edge", count !== undefined ? "taken" : "", allowed ? "allowed" : ""].filter((c) => c !== "").join(" ")
    const loop = t.from === t.to
    const back = !loop && b.x <= a.x
    const d = loop
      ? `M ${a.x - 20} ${a.y - nodeHeight / 2} C ${a.x - 40} ${a.y - 70}, ${a.x + 40} ${a.y - 70}, ${a.x + 20} ${a.y - nodeHeight / 2}`
      : back
        ? `M ${a.x} ${a.y + nodeHeight / 2} C ${a.x} ${a.y + 80}, ${b.x} ${b.y + 80}, ${b.x} ${b.y + nodeHeight / 2}`
        : `M ${a.x + 80} ${a.y} L ${b.x - 80} ${b.y}`
    const lx = loop ? a.x : back ? (a.x + b.x) / 2 : (a.x + b.x) / 2
    const ly = loop ? a.y - 62 : back ? Math.max(a.y, b.y) + 70 : (a.y + b.y) / 2 - 6
    const text = `${t.event}${t.restarting ? " ↺" : ""}${t.auto ? " (auto)" : ""}${count !== undefined && count > 1 ? ` ×${count}` : ""}`
    return s(
      "g",
      { class: cls, "data-transition": key(t) },
      s("path", { d, "marker-end": "url(#arrow)" }),
      s("text", { x: lx, y: ly, "text-anchor": "middle" }, text)
    )
  })
  const nodes = view.graph.states.map((n) => {
    const c = center(n.key)
    const cls = [
      "state",
      visited.has(n.key) ? "visited" : "",
      n.key === current ? "current" : "",
      n.terminal ? "terminal" : ""
    ]
      .filter((x) => x !== "")
      .join(" ")
    return s(
      "g",
      { class: cls, "data-state": n.key },
      s("rect", { x: c.x - 80, y: c.y - nodeHeight / 2, width: 160, height: nodeHeight, rx: n.initial ? 18 : 6 }),
      s("text", { x: c.x, y: c.y + 5, "text-anchor": "middle" }, label(n.tags))
    )
  })
  return s(
    "svg",
    {
      class: "diagram",
      width: 40 + columns * columnWidth,
      height: 120 + rows * rowHeight,
      viewBox: `0 -20 ${40 + columns * columnWidth} ${120 + rows * rowHeight}`,
      role: "img",
      "aria-label": `Machine ${view.name}`
    },
    s(
      "defs",
      {},
      s(
        "marker",
        {
          id: "arrow",
          viewBox: "0 0 10 10",
          refX: 10,
          refY: 5,
          markerWidth: 8,
          markerHeight: 8,
          orient: "auto-start-reverse"
        },
        s("path", { d: "M 0 0 L 10 5 L 0 10 z" })
      )
    ),
    ...edges,
    ...nodes
  )
}
