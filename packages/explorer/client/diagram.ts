/**
 * A machine's graph drawn as SVG: control states in columns by their distance from the empty state, transitions as
 * arrows labelled with their event, and, for one stream, the states it went through, the transitions it took and
 * the transitions allowed next highlighted. Labels are text nodes.
 */
import { s } from "./dom.ts"
import type { GraphTransition, MachineView } from "./models.ts"

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

interface Edge {
  readonly from: string
  readonly to: string
  readonly transitions: ReadonlyArray<GraphTransition>
}

// The transitions between the same two states share one arrow, their events one label.
const edgesOf = (view: MachineView): ReadonlyArray<Edge> => {
  const byPair = new Map<string, Array<GraphTransition>>()
  for (const t of view.graph.transitions) {
    const pair = JSON.stringify([t.from, t.to])
    byPair.set(pair, [...(byPair.get(pair) ?? []), t])
  }
  return [...byPair.values()].map((transitions) => ({
    from: transitions[0]!.from,
    to: transitions[0]!.to,
    transitions
  }))
}

const eventLabel = (t: GraphTransition, count: number | undefined) =>
  `${t.event}${t.restarting ? " ↺" : ""}${t.auto ? " (auto)" : ""}${count !== undefined && count > 1 ? ` ×${count}` : ""}`

const curve = (a: { x: number; y: number }, b: { x: number; y: number }, half: number, loop: boolean) => {
  if (loop) {
    const d = `M ${a.x - 20} ${a.y - nodeHeight / 2} C ${a.x - 40} ${a.y - 70}, ${a.x + 40} ${a.y - 70}, ${a.x + 20} ${a.y - nodeHeight / 2}`
    return { d, x: a.x, y: a.y - 62 }
  }
  if (b.x <= a.x) {
    const d = `M ${a.x} ${a.y + nodeHeight / 2} C ${a.x} ${a.y + 80}, ${b.x} ${b.y + 80}, ${b.x} ${b.y + nodeHeight / 2}`
    return { d, x: (a.x + b.x) / 2, y: Math.max(a.y, b.y) + 70 }
  }
  return { d: `M ${a.x + half} ${a.y} L ${b.x - half} ${b.y}`, x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 - 6 }
}

/** The diagram of `view`, with `view.path` highlighted when there is one. */
export const diagram = (view: MachineView): SVGElement => {
  const place = layers(view)
  const visited = new Set(view.path?.states ?? [])
  const taken = new Map((view.path?.transitions ?? []).map((t) => [t.key, t.count]))
  const current = view.path?.current
  const nodeWidth = Math.max(140, ...view.graph.states.map((n) => label(n.tags).length * 7 + 24))
  const columnWidth = nodeWidth + 70
  const center = (k: string) => {
    const p = place.get(k) ?? { column: 0, row: 0 }
    return { x: 20 + p.column * columnWidth + nodeWidth / 2, y: 80 + p.row * rowHeight + nodeHeight / 2 }
  }
  const columns = Math.max(...[...place.values()].map((p) => p.column)) + 1
  const rows = Math.max(...[...place.values()].map((p) => p.row)) + 1
  const edges = edgesOf(view).map((edge) => {
    const counts = edge.transitions.map((t) => taken.get(key(t)))
    const isTaken = counts.some((c) => c !== undefined)
    const allowed = current !== undefined && edge.from === current
    const cls = ["edge", isTaken ? "taken" : "", allowed ? "allowed" : ""].filter((c) => c !== "").join(" ")
    const { d, x, y } = curve(center(edge.from), center(edge.to), nodeWidth / 2, edge.from === edge.to)
    const text = edge.transitions.map((t, i) => eventLabel(t, counts[i])).join(", ")
    return s(
      "g",
      { class: cls, "data-transition": edge.transitions.map(key).join(" | ") },
      s("path", { d, "marker-end": "url(#arrow)" }),
      s("text", { x, y, "text-anchor": "middle" }, text)
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
      s("rect", {
        x: c.x - nodeWidth / 2,
        y: c.y - nodeHeight / 2,
        width: nodeWidth,
        height: nodeHeight,
        rx: n.initial ? 18 : 6
      }),
      s("text", { x: c.x, y: c.y + 5, "text-anchor": "middle" }, label(n.tags))
    )
  })
  const width = 40 + columns * columnWidth
  const height = 180 + rows * rowHeight
  return s(
    "svg",
    {
      class: "diagram",
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
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
          markerWidth: 6,
          markerHeight: 6,
          orient: "auto-start-reverse"
        },
        s("path", { d: "M 0 0 L 10 5 L 0 10 z" })
      )
    ),
    ...edges,
    ...nodes
  )
}
