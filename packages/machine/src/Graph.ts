/**
 * Graph introspection of a machine: the control states reachable from the empty state, the transitions between them,
 * the initial and terminal event types, the transitions from any state, and a Mermaid rendering. Named predicates and
 * custom accumulations are evaluated on every state visited (not analysed), so the graph is exact for them too.
 *
 * @since 0.1.0
 */
import * as Accumulate from "./Accumulate.ts"
import * as Core from "./internal/core.ts"
import type * as Machine from "./Machine.ts"
import * as Rule from "./Rule.ts"

/**
 * A reachable control state. `key` is `*` for the empty state (where every history starts, and where
 * `difference(...)` may lead back to), otherwise the tags in brackets, e.g. `[Created, Assigned]`. `initial` marks the
 * empty state.
 *
 * @since 0.1.0
 * @category models
 */
export interface Node<Tag extends string> {
  readonly key: string
  readonly tags: ReadonlyArray<Tag>
  readonly initial: boolean
  readonly terminal: boolean
}

/**
 * An allowed event between two control states: their keys and tags, whether the event restarts or follows
 * automatically, and the names of the predicates in its rule and of its custom accumulations (`custom`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Transition<Tag extends string> {
  readonly from: string
  readonly event: Tag
  readonly to: string
  readonly fromTags: ReadonlyArray<Tag>
  readonly toTags: ReadonlyArray<Tag>
  readonly restarting: boolean
  readonly auto: boolean
  readonly custom: ReadonlyArray<string>
}

/**
 * The graph of a machine.
 *
 * @since 0.1.0
 * @category models
 */
export interface Graph<Tag extends string> {
  readonly states: ReadonlyArray<Node<Tag>>
  readonly transitions: ReadonlyArray<Transition<Tag>>
  /** Event types allowed on the empty state (initial event types). */
  readonly initialEventTypes: ReadonlyArray<Tag>
  /** Event types after which nothing may follow. */
  readonly terminalEventTypes: ReadonlyArray<Tag>
}

const definitionOf = <E extends Machine.Tagged, Data>(machine: Machine.Machine<E, Data>): Core.Definition => ({
  tags: machine.eventTypes,
  specs: machine.rules as unknown as Readonly<Record<string, Core.Spec>>
})

const transition = <Tag extends string>(def: Core.Definition, from: Core.Control, event: string): Transition<Tag> => {
  const spec = def.specs[event]!
  const to = Core.next(def, from, event)
  return {
    from: Core.key(def, from),
    event: event as Tag,
    to: Core.key(def, to),
    fromTags: Core.ordered(def, from) as Array<Tag>,
    toTags: Core.ordered(def, to) as Array<Tag>,
    restarting: spec.restarting,
    auto: spec.auto,
    custom: [...Rule.predicateNames(spec.follows), ...Accumulate.customNames(spec.accumulate)]
  }
}

/**
 * Explores a machine's reachable control states (revisions aside: a restarting event leads back into the same graph).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E extends Machine.Tagged, Data>(machine: Machine.Machine<E, Data>): Graph<E["_tag"]> => {
  type Tag = E["_tag"]
  const def = definitionOf(machine)
  const explored = Core.explore(def)
  const outgoing = new Set(explored.edges.map((edge) => edge.from))
  const states: Array<Node<Tag>> = [...explored.nodes].map(([key, control]) => ({
    key,
    tags: Core.ordered(def, control) as Array<Tag>,
    initial: control.size === 0,
    terminal: !outgoing.has(key)
  }))
  const terminalKeys = new Set(states.filter((s) => s.terminal).map((s) => s.key))
  const transitions = explored.edges.map((edge) => transition<Tag>(def, explored.nodes.get(edge.from)!, edge.event))
  const initialEventTypes = transitions.filter((t) => t.from === "*").map((t) => t.event)
  const terminalEventTypes = machine.eventTypes.filter((tag) => {
    const into = transitions.filter((t) => t.event === tag)
    return into.length > 0 && into.every((t) => terminalKeys.has(t.to))
  })
  return { states, transitions, initialEventTypes, terminalEventTypes }
}

/**
 * Every transition from an arbitrary control state (any set of the machine's event types, reachable or not), in
 * declaration order of the event types: what `Machine.allowedAfter` allows, with where each event leads.
 *
 * @since 0.1.0
 * @category introspection
 */
export const transitionsFrom = <E extends Machine.Tagged, Data>(
  machine: Machine.Machine<E, Data>,
  tags: Iterable<E["_tag"]>
): ReadonlyArray<Transition<E["_tag"]>> => {
  const def = definitionOf(machine)
  const from: Core.Control = new Set(tags)
  return Core.allowed(def, from).map((event) => transition<E["_tag"]>(def, from, event))
}

/**
 * The edges of a graph as `from --event--> to` lines, handy for assertions and logs.
 *
 * @since 0.1.0
 * @category rendering
 */
export const edges = <Tag extends string>(graph: Graph<Tag>): ReadonlyArray<string> =>
  graph.transitions.map((t) => `${t.from} --${t.event}--> ${t.to}`)

/**
 * Draws a machine as a Mermaid `stateDiagram-v2`: the empty state is `[*]`, each reachable control state a node
 * labelled with its tags, each allowed event an edge (restarting ones marked `↺`, automatic ones `(auto)`, and the
 * names of named predicates and custom accumulations in brackets), and terminal states lead to `[*]`. When an event
 * leads back to the empty state, the empty state is drawn as a node of its own, `empty`, entered from `[*]`.
 *
 * @since 0.1.0
 * @category rendering
 */
export const toMermaid = <E extends Machine.Tagged, Data>(machine: Machine.Machine<E, Data>): string => {
  const graph = make(machine)
  const reentered = graph.transitions.some((t) => t.to === "*")
  const ids = new Map<string, string>()
  let n = 0
  for (const state of graph.states) {
    ids.set(state.key, state.initial ? (reentered ? "empty" : "[*]") : `s${n++}`)
  }
  const lines = ["stateDiagram-v2"]
  if (reentered) lines.push(`  state "(empty)" as empty`, "  [*] --> empty")
  for (const state of graph.states) {
    if (!state.initial) lines.push(`  state "${state.tags.join(", ")}" as ${ids.get(state.key)}`)
  }
  for (const t of graph.transitions) {
    const custom = t.custom.length > 0 ? ` [${t.custom.join(", ")}]` : ""
    const marks = `${t.restarting ? " ↺" : ""}${t.auto ? " (auto)" : ""}${custom}`
    lines.push(`  ${ids.get(t.from)} --> ${ids.get(t.to)}: ${t.event}${marks}`)
  }
  for (const state of graph.states) {
    if (state.terminal && !(state.initial && !reentered)) lines.push(`  ${ids.get(state.key)} --> [*]`)
  }
  return lines.join("\n")
}
