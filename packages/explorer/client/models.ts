/** What the API answers, as the page reads it. */

export interface Info {
  readonly actions: boolean
  readonly machines: ReadonlyArray<string>
  readonly projections: ReadonlyArray<string>
}

export interface Category {
  readonly category: string
  readonly streams: number
  readonly events: number
}

export interface StreamRow {
  readonly stream: string
  readonly category: string
  readonly version: number
}

export interface EventView {
  readonly position: string
  readonly transactionId: string
  readonly stream: string
  readonly category: string
  readonly version: number
  readonly eventId: string
  readonly type: string
  readonly schemaVersion: number
  readonly data: unknown
  readonly metadata: unknown
  readonly recordedAt: string
}

export interface Page<A> {
  readonly items: ReadonlyArray<A>
  readonly more: boolean
}

export interface StreamPage extends Page<EventView> {
  readonly stream: StreamRow
  readonly order: "asc" | "desc"
  readonly machine: string | undefined
}

export interface Search {
  readonly query: string
  readonly streams: ReadonlyArray<StreamRow>
  readonly event: EventView | undefined
  readonly chain: ReadonlyArray<EventView>
}

export interface Partition {
  readonly subscription: string
  readonly partition: number
  readonly partitions: number
  readonly checkpoint: { readonly transactionId: string; readonly position: string }
  readonly updatedAt: string
  readonly categories: ReadonlyArray<string> | undefined
  readonly eventTypes: ReadonlyArray<string> | undefined
  readonly lagEvents: number
  readonly lagSeconds: number
  readonly parked: number
  readonly worker:
    | { readonly pid: number; readonly clientAddress: string | null; readonly applicationName: string }
    | undefined
  readonly projection: { readonly name: string; readonly version: number; readonly state: string } | undefined
}

export interface Status {
  readonly partitions: ReadonlyArray<Partition>
  readonly xminHolder: { readonly pid: number; readonly heldEvents: number; readonly query: string } | undefined
  readonly history: ReadonlyArray<{ readonly at: number; readonly lag: Readonly<Record<string, number>> }>
}

export interface Parked {
  readonly id: string
  readonly subscription: string
  readonly partition: number
  readonly position: string
  readonly eventId: string
  readonly stream: string
  readonly type: string
  readonly error: string
  readonly parkedAt: string
}

export interface GraphNode {
  readonly key: string
  readonly tags: ReadonlyArray<string>
  readonly initial: boolean
  readonly terminal: boolean
}

export interface GraphTransition {
  readonly from: string
  readonly event: string
  readonly to: string
  readonly restarting: boolean
  readonly auto: boolean
}

export interface MachineView {
  readonly name: string
  readonly graph: { readonly states: ReadonlyArray<GraphNode>; readonly transitions: ReadonlyArray<GraphTransition> }
  readonly stream: string | undefined
  readonly path:
    | {
        readonly states: ReadonlyArray<string>
        readonly transitions: ReadonlyArray<{ readonly key: string; readonly count: number }>
        readonly current: string
        readonly allowed: ReadonlyArray<string>
        readonly unmatched: { readonly version: number; readonly type: string } | undefined
      }
    | undefined
}
