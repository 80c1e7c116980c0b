/**
 * Graph introspection of a machine: the control states reachable from the empty history, the transitions between
 * them, the initial and terminal event types, and a Mermaid rendering.
 *
 * @since 0.1.0
 */
import * as Core from "./internal/core.ts"
import type * as Machine from "./Machine.ts"

/**
 * A reachable control state. `key` is `*` for the empty history, otherwise the tags in brackets, e.g.
 * `[Created, Assigned]`.
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
 * An allowed event between two control states.
 *
 * @since 0.1.0
 * @category models
 */
export interface Transition<Tag extends string> {
  readonly from: string
  readonly event: Tag
  readonly to: string
  readonly restarting: boolean
  readonly auto: boolean
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
  /** Event types allowed on an empty history. */
  readonly initialEventTypes: ReadonlyArray<Tag>
  /** Event types after which nothing may follow. */
  readonly terminalEventTypes: ReadonlyArray<Tag>
}

const definitionOf = <E extends Machine.Tagged, Data>(machine: Machine.Machine<E, Data>): Core.Definition => ({
  tags: machine.eventTypes,
  specs: machine.rules as unknown as Readonly<Record<string, Core.Spec>>
})

/**
 * Explores a machine's reachable control states (versions aside: a restarting event leads back into the same graph).
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
    tags: Core.ordered(def, control.tags) as Array<Tag>,
    initial: control.empty,
    terminal: !outgoing.has(key)
  }))
  const terminalKeys = new Set(states.filter((s) => s.terminal).map((s) => s.key))
  const transitions = explored.edges.map((edge) => ({
    from: edge.from,
    event: edge.event as Tag,
    to: edge.to,
    restarting: def.specs[edge.event]!.restarting,
    auto: def.specs[edge.event]!.auto
  }))
  const initialEventTypes = transitions.filter((t) => t.from === "*").map((t) => t.event)
  const terminalEventTypes = machine.eventTypes.filter((tag) => {
    const into = transitions.filter((t) => t.event === tag)
    return into.length > 0 && into.every((t) => terminalKeys.has(t.to))
  })
  return { states, transitions, initialEventTypes, terminalEventTypes }
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
 * Draws a machine as a Mermaid `stateDiagram-v2`: the empty history is `[*]`, each reachable control state a node
 * labelled with its tags, each allowed event an edge (restarting ones marked `↺`, automatic ones `auto`), and terminal
 * states lead to `[*]`.
 *
 * @since 0.1.0
 * @category rendering
 */
export const toMermaid = <E extends Machine.Tagged, Data>(machine: Machine.Machine<E, Data>): string => {
  const graph = make(machine)
  const ids = new Map<string, string>()
  let n = 0
  for (const state of graph.states) {
    ids.set(state.key, state.initial ? "[*]" : `s${n++}`)
  }
  const lines = ["stateDiagram-v2"]
  for (const state of graph.states) {
    if (!state.initial) lines.push(`  state "${state.tags.join(", ")}" as ${ids.get(state.key)}`)
  }
  for (const t of graph.transitions) {
    const marks = `${t.restarting ? " ↺" : ""}${t.auto ? " (auto)" : ""}`
    lines.push(`  ${ids.get(t.from)} --> ${ids.get(t.to)}: ${t.event}${marks}`)
  }
  for (const state of graph.states) {
    if (state.terminal && !state.initial) lines.push(`  ${ids.get(state.key)} --> [*]`)
  }
  return lines.join("\n")
}
