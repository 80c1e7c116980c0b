import * as Accumulate from "../Accumulate.ts"
import * as Rule from "../Rule.ts"

/** @internal */
export interface Spec {
  readonly follows: Rule.Rule<string>
  readonly accumulate: Accumulate.Accumulate<string>
  readonly restarting: boolean
  readonly requires: ReadonlyArray<string>
  readonly auto: boolean
}

/** @internal */
export interface Definition {
  readonly tags: ReadonlyArray<string>
  readonly specs: Readonly<Record<string, Spec>>
}

/** A control state without its version: what the rules look at. @internal */
export interface Control {
  readonly tags: ReadonlySet<string>
  readonly empty: boolean
}

/** @internal */
export const emptyControl: Control = { tags: new Set(), empty: true }

/** Tags in declaration order (unknown tags, which the types rule out, sort last). @internal */
export const ordered = (def: Definition, tags: Iterable<string>): Array<string> => {
  const set = new Set(tags)
  const known = def.tags.filter((t) => set.has(t))
  const unknown = [...set].filter((t) => !def.tags.includes(t)).sort()
  return [...known, ...unknown]
}

/** @internal */
export const allowed = (def: Definition, control: Control): Array<string> =>
  def.tags.filter((tag) => Rule.holds(def.specs[tag]!.follows, control.tags, control.empty))

/** @internal */
export const next = (def: Definition, control: Control, tag: string): Control => ({
  tags: Accumulate.apply(def.specs[tag]!.accumulate, tag, control.tags),
  empty: false
})

/** A stable key for a control state; `*` is the empty history. @internal */
export const key = (def: Definition, control: Control): string =>
  control.empty ? "*" : `[${ordered(def, control.tags).join(", ")}]`

/** @internal */
export interface Edge {
  readonly from: string
  readonly event: string
  readonly to: string
}

/** @internal */
export interface Explored {
  readonly nodes: ReadonlyMap<string, Control>
  readonly edges: ReadonlyArray<Edge>
}

/** Breadth-first exploration of the control states reachable from the empty history. @internal */
export const explore = (def: Definition): Explored => {
  const nodes = new Map<string, Control>([["*", emptyControl]])
  const edges: Array<Edge> = []
  const queue: Array<Control> = [emptyControl]
  while (queue.length > 0) {
    const control = queue.shift()!
    const from = key(def, control)
    for (const tag of allowed(def, control)) {
      const target = next(def, control, tag)
      const to = key(def, target)
      edges.push({ from, event: tag, to })
      if (!nodes.has(to)) {
        nodes.set(to, target)
        queue.push(target)
      }
    }
  }
  return { nodes, edges }
}

/**
 * Finds the first reachable state where an automatic transition competes with another transition, or where
 * automatic transitions loop forever. @internal
 */
export const checkAutomatic = (
  def: Definition,
  explored: Explored
): { readonly state: string; readonly reason: string } | undefined => {
  for (const [state, control] of explored.nodes) {
    const candidates = allowed(def, control)
    const autos = candidates.filter((tag) => def.specs[tag]!.auto)
    if (autos.length > 0 && candidates.length > 1) {
      const others = candidates.filter((tag) => tag !== autos[0])
      return {
        state,
        reason: `automatic transition '${autos[0]}' competes with ${others.map((t) => `'${t}'`).join(", ")}`
      }
    }
  }
  for (const [state, control] of explored.nodes) {
    let current = control
    let steps = 0
    for (;;) {
      const candidates = allowed(def, current)
      if (candidates.length !== 1 || !def.specs[candidates[0]!]!.auto) break
      current = next(def, current, candidates[0]!)
      steps++
      if (steps > explored.nodes.size) {
        return { state, reason: "automatic transitions never stop" }
      }
    }
  }
  return undefined
}
