/**
 * The implementation of a container's endpoints: each request runs as a command of a decider built from the machine
 * (create, append with `If-Match`), or reads the store and the index.
 */
import { Graph, Machine } from "@evently/machine"
import { CommandHandler, EventStore } from "@evently/store"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as HttpApiBuilder from "effect/http-api/HttpApiBuilder"
import * as HttpApiSchema from "effect/http-api/HttpApiSchema"
import type { Container, Index, makeApi, Options, RecordedEvent } from "../../ContainerApi.ts"
import * as Problem from "../../Problem.ts"
import * as EntityTags from "../entityTags.ts"
import * as Idempotency from "../idempotency.ts"
import {
  commandProblems,
  Exists,
  invalidRequest,
  keyReused,
  Missing,
  notFound,
  readProblem,
  Stale,
  unavailable
} from "./problems.ts"

/** `*`, or the versions an `If-Match` / `If-None-Match` names (`"3"`, `W/"3"` for If-None-Match), or nothing valid. */
type EntityTags = "*" | ReadonlyArray<number>

const parseEntityTags = (header: string, weak: boolean): EntityTags => {
  if (header.trim() === "*") return "*"
  const versions: Array<number> = []
  for (const part of header.split(",")) {
    let tag = part.trim()
    if (weak && tag.startsWith("W/")) tag = tag.slice(2)
    const match = /^"(\d{1,15})"$/.exec(tag)
    if (match !== null) versions.push(Number(match[1]))
  }
  return versions
}

export const etagOf = (version: number) => `"${version}"`

interface Command<E> {
  readonly id: string
  readonly event: E
  readonly create: boolean
  readonly ifMatch: string | undefined
}

const makeDecider = <E extends Machine.Tagged, Data>(machine: Machine.Machine<E, Data>) =>
  Machine.decider(machine, (command: Command<E>, state): Result.Result<ReadonlyArray<E>, Missing | Exists | Stale> => {
    if (command.create && state.eventCount > 0)
      return Result.fail(new Exists({ id: command.id, version: state.eventCount }))
    if (!command.create && state.eventCount === 0) return Result.fail(new Missing({ id: command.id }))
    if (command.ifMatch !== undefined) {
      const tags = parseEntityTags(command.ifMatch, false)
      if (tags !== "*" && !tags.includes(state.eventCount)) {
        return Result.fail(new Stale({ expected: command.ifMatch, actual: state.eventCount }))
      }
    }
    return Result.succeed([command.event])
  })

const toContainer = (
  machine: Machine.Machine<Machine.Tagged, unknown>,
  id: string,
  state: Machine.State<string, unknown>
): Container => ({
  id,
  state: state.tags,
  version: state.eventCount,
  revision: state.revision,
  data: state.data as Record<string, unknown>,
  allowed: machine.allowed(state)
})

const toRecordedEvent = (recorded: EventStore.RecordedEvent): RecordedEvent => ({
  eventId: recorded.eventId,
  type: recorded.type,
  version: recorded.streamVersion,
  position: recorded.position.toString(),
  recordedAt: DateTime.formatIso(recorded.recordedAt),
  schemaVersion: recorded.schemaVersion,
  data: recorded.data,
  metadata: recorded.metadata
})

/** The API of one container type, as `ContainerApi.makeApi` builds it, for any machine. */
type ContainerHttpApi = ReturnType<typeof makeApi<string, Machine.Tagged, string>>

/** The layer that implements a container's endpoints; `index` is the service its list reads. */
export const layerGroup = (
  api: ContainerHttpApi,
  index: typeof Index,
  options: Options<string, Machine.Tagged, unknown, string>,
  category: string
) => {
  const { name, machine, codec } = options
  const decider = makeDecider(machine)
  const streamOf = (id: string) => `${category}-${id}`
  return HttpApiBuilder.group(
    api,
    name,
    Effect.fnUntraced(function* (handlers) {
      const store = yield* EventStore.EventStore
      const commands = yield* CommandHandler.make({ decider, codec })
      const containers = yield* index

      /** The fingerprint of a request under an idempotency key: its endpoint, its container and its event. */
      const fingerprintOf = (command: Command<Machine.Tagged>, event: Machine.Tagged) =>
        codec.encode(event).pipe(
          Effect.orDie,
          Effect.flatMap((encoded) =>
            Idempotency.fingerprint({ endpoint: command.create ? "create" : "append", id: command.id, event: encoded })
          )
        )

      /**
       * Whether the first handling of an idempotency key was this request: the fingerprint stored with its first
       * event, or (for events stored without one) that event compared with this request's.
       */
      const isSameRequest = Effect.fnUntraced(function* (
        command: Command<Machine.Tagged>,
        fingerprint: string,
        handled: CommandHandler.Handled<Machine.Tagged, unknown>
      ) {
        const from = handled.version - handled.events.length + 1
        const first = yield* Stream.runHead(store.readStream(streamOf(command.id), { from, limit: 1 })).pipe(
          Effect.mapError(readProblem)
        )
        const stored = first._tag === "Some" ? first.value.metadata.headers?.[Idempotency.header] : undefined
        if (stored !== undefined) return stored === fingerprint
        const event = handled.events[0]
        return event === undefined || (yield* fingerprintOf(command, event)) === fingerprint
      })

      const run = Effect.fnUntraced(function* (command: Command<Machine.Tagged>, idempotencyKey: string | undefined) {
        const fingerprint = idempotencyKey === undefined ? undefined : yield* fingerprintOf(command, command.event)
        const handled = yield* commands
          .handle(streamOf(command.id), command, {
            commandId: idempotencyKey,
            headers: fingerprint === undefined ? undefined : { [Idempotency.header]: fingerprint }
          })
          .pipe(Effect.catchTags(commandProblems(idempotencyKey)))
        if (handled.duplicate && idempotencyKey !== undefined && fingerprint !== undefined) {
          if (!(yield* isSameRequest(command, fingerprint, handled))) return yield* keyReused(idempotencyKey)
        }
        return toContainer(machine, command.id, handled.state)
      })

      const load = (id: string) =>
        commands.load(streamOf(id)).pipe(
          Effect.mapError(readProblem),
          Effect.flatMap((loaded) => (loaded.version === 0 ? Effect.fail(notFound(id)) : Effect.succeed(loaded)))
        )

      const exists = (id: string) =>
        store.streamVersion(streamOf(id)).pipe(
          Effect.mapError(unavailable),
          Effect.flatMap((version) => (version === 0 ? Effect.fail(notFound(id)) : Effect.succeed(version)))
        )

      const graph = Graph.make(machine)
      const mermaid = Graph.toMermaid(machine)

      return handlers.handleAll({
        list: ({ query }) =>
          containers.list(query).pipe(
            Effect.mapError(unavailable),
            Effect.map((page) =>
              page.next === undefined ? { items: page.items } : { items: page.items, next: page.next }
            )
          ),
        graph: ({ query }) =>
          Effect.succeed(
            query.format === "mermaid"
              ? HttpServerResponse.text(mermaid, { contentType: "text/plain" })
              : { ...graph, mermaid }
          ),
        create: Effect.fnUntraced(function* ({ query, headers, payload }) {
          const key = headers["idempotency-key"]
          const id =
            query.id ?? (key === undefined ? crypto.randomUUID() : CommandHandler.eventId(category, `create:${key}`, 0))
          if (id === "graph") {
            return yield* invalidRequest("ReservedId", [{ path: ["query", "id"], message: "'graph' is reserved" }])
          }
          // Without If-Match no precondition can fail: a PreconditionFailed here would be a bug.
          const container = yield* run({ id, event: payload, create: true, ifMatch: undefined }, key).pipe(
            Effect.catchTag("PreconditionFailed", (impossible) => Effect.die(impossible))
          )
          return HttpApiSchema.withHeaders({
            body: container,
            headers: { etag: etagOf(container.version), location: `/${name}/${id}` }
          })
        }),
        get: Effect.fnUntraced(function* ({ params, headers }) {
          const loaded = yield* load(params.id)
          const ifNoneMatch = headers["if-none-match"]
          if (ifNoneMatch !== undefined) {
            const tags = parseEntityTags(ifNoneMatch, true)
            if (tags === "*" || tags.includes(loaded.version)) {
              return HttpServerResponse.empty({ status: 304, headers: { etag: etagOf(loaded.version) } })
            }
          }
          const container = toContainer(machine, params.id, loaded.state)
          return HttpApiSchema.withHeaders({ body: container, headers: { etag: etagOf(container.version) } })
        }),
        append: Effect.fnUntraced(function* ({ params, headers, payload }) {
          const ifMatch = headers["if-match"]
          if (ifMatch === undefined && options.requireIfMatch === true) {
            return yield* new Problem.PreconditionRequired({
              tag: "PreconditionRequired",
              detail: "This server requires If-Match on appends: GET the container and send its ETag"
            })
          }
          if (ifMatch !== undefined && EntityTags.parse(ifMatch) === undefined) {
            return yield* invalidRequest("InvalidIfMatch", [
              {
                path: ["headers", "if-match"],
                message: `expected * or version ETags such as "3", got ${JSON.stringify(ifMatch)}`
              }
            ])
          }
          const command: Command<Machine.Tagged> = { id: params.id, event: payload, create: false, ifMatch }
          // A conditional append decides against the version the client saw: a concurrent change fails it with 412
          // on the next attempt (the retry reloads and the version no longer matches), never appends on top.
          const container = yield* run(command, headers["idempotency-key"])
          return HttpApiSchema.withHeaders({ body: container, headers: { etag: etagOf(container.version) } })
        }),
        events: Effect.fnUntraced(function* ({ params, query }) {
          const version = yield* exists(params.id)
          const limit = query.limit ?? 100
          const descending = query.order === "desc"
          const after = query.after
          if (descending && after !== undefined && after <= 1) return { items: [] }
          const read = descending
            ? store.readStream(streamOf(params.id), {
                direction: "backward",
                from: after === undefined ? version : after - 1,
                limit
              })
            : store.readStream(streamOf(params.id), { from: (after ?? 0) + 1, limit })
          const items = (yield* Stream.runCollect(read).pipe(Effect.mapError(readProblem))).map(toRecordedEvent)
          const last = items[items.length - 1]
          const more =
            last !== undefined && items.length === limit && (descending ? last.version > 1 : last.version < version)
          return more ? { items, next: last.version } : { items }
        }),
        event: Effect.fnUntraced(function* ({ params }) {
          const found = yield* Stream.runHead(store.readStream(streamOf(params.id), { from: params.n, limit: 1 })).pipe(
            Effect.mapError(readProblem)
          )
          if (found._tag === "None") {
            return yield* notFound(params.id, `Container '${params.id}' has no event ${params.n}`)
          }
          return toRecordedEvent(found.value)
        })
      })
    })
  )
}
