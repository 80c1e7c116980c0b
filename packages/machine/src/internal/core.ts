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

/** A control state: the set of tags accumulated so far, all that the rules look at. @internal */
export type Control = ReadonlySet<string>

/** @internal */
export const emptyControl: Control = new Set()

/** Tags in declaration order (unknown tags, which the types rule out, sort last). @internal */
export const ordered = (def: Definition, tags: Iterable<string>): Array<string> => {
  const set = new Set(tags)
  const known = def.tags.filter((t) => set.has(t))
  const unknown = [...set].filter((t) => !def.tags.includes(t)).sort()
  return [...known, ...unknown]
}

/** @internal */
export const allowed = (def: Definition, control: Control): Array<string> =>
  def.tags.filter((tag) => Rule.holds(def.specs[tag]!.follows, control))

/** @internal */
export const next = (def: Definition, control: Control, tag: string): Control =>
  Accumulate.apply(def.specs[tag]!.accumulate, tag, control)

/** The first automatic event type allowed in a control state, in declaration order. @internal */
export const automatic = (def: Definition, control: Control): string | undefined =>
  def.tags.find((tag) => def.specs[tag]!.auto && Rule.holds(def.specs[tag]!.follows, control))

/** A stable key for a control state; `*` is the empty state. @internal */
export const key = (def: Definition, control: Control): string =>
  control.size === 0 ? "*" : `[${ordered(def, control).join(", ")}]`

/** Fields of a record that are missing: absent, `undefined` or `null` (microcosm's `None`). @internal */
export const missingFields = (spec: Spec, record: Readonly<Record<string, unknown>>): Array<string> =>
  spec.requires.filter((field) => record[field] === undefined || record[field] === null)

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

/** Breadth-first exploration of the control states reachable from the empty state. @internal */
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
 * Finds the first transition that leads to an event type the machine does not have (only a custom accumulation whose
 * tags were not checked by the compiler can). @internal
 */
export const checkTags = (
  def: Definition,
  explored: Explored
): { readonly state: string; readonly reason: string } | undefined => {
  const known = new Set(def.tags)
  for (const edge of explored.edges) {
    const unknown = [...explored.nodes.get(edge.to)!].filter((tag) => !known.has(tag))
    if (unknown.length > 0) {
      return {
        state: edge.from,
        reason: `'${edge.event}' leads to unknown event types ${unknown.map((t) => `'${t}'`).join(", ")}`
      }
    }
  }
  return undefined
}

/**
 * Finds the first state reached by an event where an automatic transition competes with another transition, or
 * where automatic transitions loop forever. Automatic events only ever follow an event, so the empty state counts
 * only when some event leads into it (as in microcosm-eventsource, whose check walks the states after each event).
 * @internal
 */
export const checkAutomatic = (
  def: Definition,
  explored: Explored
): { readonly state: string; readonly reason: string } | undefined => {
  const reached = new Set(explored.edges.map((edge) => edge.to))
  const afterEvents = [...explored.nodes].filter(([state]) => reached.has(state))
  for (const [state, control] of afterEvents) {
    const candidates = allowed(def, control)
    const auto = automatic(def, control)
    if (auto !== undefined && candidates.length > 1) {
      const others = candidates.filter((tag) => tag !== auto)
      return {
        state,
        reason: `automatic transition '${auto}' competes with ${others.map((t) => `'${t}'`).join(", ")}`
      }
    }
  }
  for (const [state, control] of afterEvents) {
    const seen = new Set([state])
    let current = control
    for (;;) {
      const auto = automatic(def, current)
      if (auto === undefined) break
      current = next(def, current, auto)
      const at = key(def, current)
      if (seen.has(at)) return { state, reason: "automatic transitions never stop" }
      seen.add(at)
    }
  }
  return undefined
}
