/**
 * A stream's path through a machine's graph (`@evently/machine/Graph`): the control states its events went through,
 * the transitions they took (with how many times each was taken), where it stands now and the event types allowed
 * next. The explorer draws the graph and highlights the path.
 *
 * @since 0.1.0
 */
import type * as Graph from "@evently/machine/Graph"

/**
 * A stream's path. `states` and `transitions` are keys of the graph (`from --event--> to` for a transition), in the
 * order first reached; `current` is the state after the last event that the graph knows. `unmatched` is the first
 * event, by version, that the graph has no transition for from where the stream stood (a stream of another machine,
 * or written outside it): the path stops there.
 *
 * @since 0.1.0
 * @category models
 */
export interface Path {
  readonly states: ReadonlyArray<string>
  readonly transitions: ReadonlyArray<{ readonly key: string; readonly count: number }>
  readonly current: string
  readonly allowed: ReadonlyArray<string>
  readonly unmatched: { readonly version: number; readonly type: string } | undefined
}

/**
 * The key of a transition: `from --event--> to`, as `Graph.edges` writes it.
 *
 * @since 0.1.0
 * @category rendering
 */
export const transitionKey = (t: { readonly from: string; readonly event: string; readonly to: string }): string =>
  `${t.from} --${t.event}--> ${t.to}`

/**
 * Follows `types` (a stream's event types in version order) through `graph` from the empty state.
 *
 * @since 0.1.0
 * @category constructors
 */
export const follow = (graph: Graph.Graph<string>, types: ReadonlyArray<string>): Path => {
  const initial = graph.states.find((s) => s.initial)?.key ?? "*"
  const states = [initial]
  const counts = new Map<string, number>()
  let current = initial
  let unmatched: Path["unmatched"]
  for (const [index, type] of types.entries()) {
    const t = graph.transitions.find((x) => x.from === current && x.event === type)
    if (t === undefined) {
      unmatched = { version: index + 1, type }
      break
    }
    const key = transitionKey(t)
    counts.set(key, (counts.get(key) ?? 0) + 1)
    current = t.to
    if (!states.includes(current)) states.push(current)
  }
  return {
    states,
    transitions: [...counts].map(([key, count]) => ({ key, count })),
    current,
    allowed: graph.transitions.filter((t) => t.from === current).map((t) => t.event),
    unmatched
  }
}
