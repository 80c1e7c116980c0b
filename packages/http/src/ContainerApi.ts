/**
 * A machine's events as HTTP resources, generated from the machine, its event codec and a container name (`tasks`):
 *
 * - `POST /tasks` with an initial event creates a container: 201, `Location: /tasks/{id}`, `ETag: "<version>"`;
 * - `POST /tasks/{id}/events` appends an event: 201 with the new state; `If-Match: "<version>"` makes it conditional
 *   (412 when the container is at another version, 400 when the header is not `*` or version ETags),
 *   `Idempotency-Key` makes a retry return the first response (422 when the key was used for another request);
 * - `GET /tasks/{id}` (304 on a matching `If-None-Match`), `GET /tasks/{id}/events` (paged, either order),
 *   `GET /tasks/{id}/events/{n}`, `GET /tasks` (the index, filtered by control state), `GET /tasks/graph`.
 *
 * The log is immutable: there is no PUT, PATCH or DELETE (405). Every error is `application/problem+json` (see
 * `Problem`): a body that is not JSON (415), an unknown path under the container (404), a stored event that cannot be
 * read (500, naming its position) and an unexpected failure (500, logged) included.
 * Streams are named `<category>-<id>`; the category defaults to the container name without its trailing `s`
 * (`tasks` → `task`). Ids are 1 to 128 letters, digits, `_` or `-` (never `.` or `/`, so never a path), checked
 * before any store call. The id `graph` is taken by the graph resource.
 *
 * @since 0.1.0
 */
import type { Machine } from "@evently/machine"
import { type EventCodec, EventStore, StreamName, type Subscriptions } from "@evently/store"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpApi from "effect/http-api/HttpApi"
import * as HttpApiBuilder from "effect/http-api/HttpApiBuilder"
import * as HttpApiEndpoint from "effect/http-api/HttpApiEndpoint"
import * as HttpApiGroup from "effect/http-api/HttpApiGroup"
import * as HttpApiMiddleware from "effect/http-api/HttpApiMiddleware"
import * as HttpApiScalar from "effect/http-api/HttpApiScalar"
import * as HttpApiSchema from "effect/http-api/HttpApiSchema"
import * as OpenApi from "effect/http-api/OpenApi"
import * as ContainerIndex from "./ContainerIndex.ts"
import * as EncodedNames from "./internal/encodedNames.ts"
import * as Fallback from "./internal/containerApi/fallback.ts"
import * as Handlers from "./internal/containerApi/handlers.ts"
import * as RequestGuardImpl from "./internal/containerApi/requestGuard.ts"
import { packageVersion } from "./internal/version.ts"
import * as Problem from "./Problem.ts"

/**
 * A container id: 1 to 128 letters, digits, `_` or `-`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Id = Schema.String.check(Schema.isPattern(/^[A-Za-z0-9_-]{1,128}$/)).annotate({
  description: "1 to 128 letters, digits, '_' or '-'"
})

/**
 * A container as the resources show it: `state` is the control state (event types accumulated), `version` the
 * stream version (the `ETag`), `revision` the machine's revision (bumped by restarting events), `data` the folded domain
 * data and `allowed` the event types the machine accepts next.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Container = Schema.Struct({
  id: Schema.String,
  state: Schema.Array(Schema.String),
  version: Schema.Int,
  revision: Schema.Int,
  data: Schema.Record(Schema.String, Schema.Unknown),
  allowed: Schema.Array(Schema.String)
}).annotate({ identifier: "Container" })

/**
 * @since 0.1.0
 * @category schemas
 */
export type Container = typeof Container.Type

/**
 * A recorded event with its metadata; `position` (global, a 64-bit integer) is a string.
 *
 * @since 0.1.0
 * @category schemas
 */
export const RecordedEvent = Schema.Struct({
  eventId: Schema.String,
  type: Schema.String,
  version: Schema.Int,
  position: Schema.String,
  recordedAt: Schema.String,
  schemaVersion: Schema.Int,
  data: Schema.Unknown,
  metadata: EventStore.Metadata
}).annotate({ identifier: "RecordedEvent" })

/**
 * @since 0.1.0
 * @category schemas
 */
export type RecordedEvent = typeof RecordedEvent.Type

/**
 * A page of a container's events; `next` is the `after` of the next page, absent on the last one.
 *
 * @since 0.1.0
 * @category schemas
 */
export const EventPage = Schema.Struct({
  items: Schema.Array(RecordedEvent),
  next: Schema.optionalKey(Schema.Int)
}).annotate({ identifier: "EventPage" })

/**
 * One container of the index.
 *
 * @since 0.1.0
 * @category schemas
 */
export const IndexEntry = Schema.Struct({
  id: Schema.String,
  state: Schema.Array(Schema.String),
  version: Schema.Int,
  revision: Schema.Int,
  updatedAt: Schema.String
}).annotate({ identifier: "IndexEntry" })

/**
 * A page of the index; `next` is the `after` of the next page, absent on the last one.
 *
 * @since 0.1.0
 * @category schemas
 */
export const IndexPage = Schema.Struct({
  items: Schema.Array(IndexEntry),
  next: Schema.optionalKey(Schema.String)
}).annotate({ identifier: "IndexPage" })

/**
 * The machine's graph: reachable control states, transitions, initial and terminal event types, and the Mermaid
 * text of it.
 *
 * @since 0.1.0
 * @category schemas
 */
export const MachineGraph = Schema.Struct({
  states: Schema.Array(
    Schema.Struct({
      key: Schema.String,
      tags: Schema.Array(Schema.String),
      initial: Schema.Boolean,
      terminal: Schema.Boolean
    })
  ),
  transitions: Schema.Array(
    Schema.Struct({
      from: Schema.String,
      event: Schema.String,
      to: Schema.String,
      restarting: Schema.Boolean,
      auto: Schema.Boolean
    })
  ),
  initialEventTypes: Schema.Array(Schema.String),
  terminalEventTypes: Schema.Array(Schema.String),
  mermaid: Schema.String
}).annotate({ identifier: "MachineGraph" })

/**
 * Guards every request of the resources: bodies larger than the limit fail with 413 before they are read, a body of
 * another media type than JSON with 415, a request that does not decode with a 400 problem naming each bad field, and
 * an unexpected failure (a defect) with a 500 problem, logged. Every error is `application/problem+json`.
 *
 * @since 0.1.0
 * @category middleware
 */
export class RequestGuard extends HttpApiMiddleware.Service<RequestGuard>()("@evently/http/ContainerApi/RequestGuard", {
  error: [Problem.InvalidRequest, Problem.PayloadTooLarge, Problem.UnsupportedMediaType, Problem.InternalError]
}) {}

/**
 * What the resources are generated from: the container name (the path segment, e.g. `tasks`), the machine, the
 * codec of its events, and options: the stream `category` (default: `name` without a trailing `s`; letters, digits
 * and `_`, else `make` throws `InvalidStreamName`),
 * `requireIfMatch` (appends without `If-Match` fail with 428), `maxBodyBytes` (default 64 KiB), the index
 * subscription's name, and the API's id, title and version in the OpenAPI document.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<Name extends string, E extends Machine.Tagged, Data, Id extends string = "evently"> {
  readonly name: Name
  readonly machine: Machine.Machine<E, Data>
  readonly codec: EventCodec.EventCodec<E>
  readonly category?: string | undefined
  readonly requireIfMatch?: boolean | undefined
  readonly maxBodyBytes?: number | undefined
  readonly indexSubscription?: string | undefined
  /** The index's table (default `evently_container_index`). */
  readonly indexTable?: string | undefined
  /** The API's id (default `evently`): the id of its `HttpApi`, and of its handlers' `HttpApiGroup.Service`. */
  readonly apiId?: Id | undefined
  /** The API's title in the OpenAPI document (default `<name> (evently)`). */
  readonly title?: string | undefined
  /** The API's version in the OpenAPI document (default: the version of `@evently/http`). */
  readonly version?: string | undefined
  /** Where `routes` serves the OpenAPI document (default `/openapi.json`; `false`: not at all). */
  readonly openapiPath?: `/${string}` | false | undefined
  /** Where `routes` serves the Scalar page (default `/docs`; `false`: not at all). */
  readonly docsPath?: `/${string}` | false | undefined
}

/**
 * The default largest request body, in bytes.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultMaxBodyBytes = 64 * 1024

/**
 * The layer of {@link RequestGuard}: a body over `maxBodyBytes` (by `Content-Length`, or while it is read) is a 413
 * problem, a body that is not `application/json` a 415 problem, a request that does not decode a 400 problem, and a
 * defect a 500 problem (the defect is logged, not sent).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRequestGuard = (maxBodyBytes: number = defaultMaxBodyBytes): Layer.Layer<RequestGuard> =>
  Layer.succeed(RequestGuard, RequestGuardImpl.guard(maxBodyBytes))

const commandErrors = [
  Problem.NotFound,
  Problem.IllegalTransition,
  Problem.AlreadyExists,
  Problem.Contended,
  Problem.PreconditionFailed,
  Problem.PreconditionRequired,
  Problem.IdempotencyKeyReused,
  Problem.Unavailable,
  Problem.UnreadableEvent
] as const

// Create takes no If-Match: a precondition can neither fail nor be required.
const createErrors = commandErrors.filter(
  (error) => error !== Problem.PreconditionFailed && error !== Problem.PreconditionRequired
) as unknown as readonly [
  typeof Problem.NotFound,
  typeof Problem.IllegalTransition,
  typeof Problem.AlreadyExists,
  typeof Problem.Contended,
  typeof Problem.IdempotencyKeyReused,
  typeof Problem.Unavailable,
  typeof Problem.UnreadableEvent
]

/**
 * Builds the endpoints of a container type. `make` returns them as an `HttpApiGroup` (prefixed with `/{name}`) and as
 * an `HttpApi` of that one group, with the layers that implement and serve them.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeGroup = <const Name extends string, E extends Machine.Tagged>(
  name: Name,
  schema: Schema.Codec<E, { readonly _tag: string }>
) =>
  HttpApiGroup.make(name)
    .add(
      HttpApiEndpoint.get("list", "/", {
        query: {
          state: Schema.optional(Schema.String),
          after: Schema.optional(Id),
          limit: Schema.optional(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: ContainerIndex.maxLimit })))
        },
        success: IndexPage,
        error: [Problem.Unavailable]
      }),
      HttpApiEndpoint.get("graph", "/graph", {
        query: { format: Schema.optional(Schema.Literals(["json", "mermaid"])) },
        success: [MachineGraph, Schema.String.pipe(HttpApiSchema.asText({ contentType: "text/plain" }))]
      }),
      HttpApiEndpoint.post("create", "/", {
        query: { id: Schema.optional(Id) },
        headers: {
          "idempotency-key": Schema.optional(Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(200)))
        },
        payload: schema,
        success: HttpApiSchema.WithHeaders(Container.pipe(HttpApiSchema.status(201)), {
          etag: Schema.String,
          location: Schema.String
        }),
        error: createErrors
      }),
      HttpApiEndpoint.get("get", "/:id", {
        params: { id: Id },
        headers: { "if-none-match": Schema.optional(Schema.String) },
        success: [HttpApiSchema.WithHeaders(Container, { etag: Schema.String }), HttpApiSchema.Empty(304)],
        error: [Problem.NotFound, Problem.Unavailable, Problem.UnreadableEvent]
      }),
      HttpApiEndpoint.post("append", "/:id/events", {
        params: { id: Id },
        headers: {
          "if-match": Schema.optional(Schema.String),
          "idempotency-key": Schema.optional(Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(200)))
        },
        payload: schema,
        success: HttpApiSchema.WithHeaders(Container.pipe(HttpApiSchema.status(201)), { etag: Schema.String }),
        error: commandErrors
      }),
      HttpApiEndpoint.get("events", "/:id/events", {
        params: { id: Id },
        query: {
          limit: Schema.optional(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1000 }))),
          after: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))),
          order: Schema.optional(Schema.Literals(["asc", "desc"]))
        },
        success: EventPage,
        error: [Problem.NotFound, Problem.Unavailable, Problem.UnreadableEvent]
      }),
      HttpApiEndpoint.get("event", "/:id/events/:n", {
        params: { id: Id, n: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)) },
        success: RecordedEvent,
        error: [Problem.NotFound, Problem.Unavailable, Problem.UnreadableEvent]
      })
    )
    .middleware(RequestGuard)
    .prefix(`/${name}`)

/**
 * The `HttpApi` of one container type, with the parse options that report every bad field at once; its `id` (default
 * `evently`), `title` (default `<name> (evently)`) and `version` (default: the version of `@evently/http`) are what
 * the OpenAPI document says.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeApi = <const Name extends string, E extends Machine.Tagged, const Id extends string = "evently">(
  name: Name,
  schema: Schema.Codec<E, { readonly _tag: string }>,
  options: {
    readonly id?: Id | undefined
    readonly title?: string | undefined
    readonly version?: string | undefined
  } = {}
) =>
  // Without an id, `Id` is its default, "evently".
  HttpApi.make((options.id ?? "evently") as Id)
    .add(makeGroup(name, schema))
    .annotate(HttpApi.ParseOptions, { errors: "all", reportInput: true })
    .annotate(HttpApi.HeadersParseOptions, {})
    .annotateMerge(
      OpenApi.annotations({ title: options.title ?? `${name} (evently)`, version: options.version ?? packageVersion })
    )

/**
 * The index a container API keeps (for `waitUntilCaughtUp` in tests and for other readers).
 *
 * @since 0.1.0
 * @category services
 */
export class Index extends Context.Service<Index, ContainerIndex.ContainerIndex>()(
  "@evently/http/ContainerApi/Index"
) {}

/**
 * Generates a container type's resources from a machine and its codec.
 *
 * ```ts
 * import { NodeHttpServer } from "@effect/platform-node"
 * import { ContainerApi } from "@evently/http"
 * import { Machine, Rule } from "@evently/machine"
 * import { EventCodec, EventStore, Subscriptions } from "@evently/store"
 * import * as Layer from "effect/Layer"
 * import * as Schema from "effect/Schema"
 * import * as HttpRouter from "effect/http/HttpRouter"
 * import { createServer } from "node:http"
 *
 * const TaskEvent = Schema.TaggedUnion({ Created: { description: Schema.String }, Started: {} })
 * const TaskMachine = Machine.make(TaskEvent, {
 *   Created: { follows: Rule.nothing() },
 *   Started: { follows: Rule.event("Created") }
 * })
 *
 * const tasks = ContainerApi.make({
 *   name: "tasks",
 *   machine: TaskMachine,
 *   codec: EventCodec.make(TaskEvent),
 *   apiId: "task-list", // the API's id, title and version in /openapi.json
 *   title: "Task list",
 *   version: "1.0.0"
 * })
 *
 * // POST /tasks, POST /tasks/{id}/events, GET /tasks/{id}, GET /tasks (the index), GET /tasks/graph, ...
 * export const server = HttpRouter.serve(tasks.routes).pipe(
 *   Layer.provide(NodeHttpServer.layer(createServer, { port: 3000 })),
 *   Layer.provide(Subscriptions.layerMemory.pipe(Layer.provideMerge(EventStore.layerMemory)))
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <const Name extends string, E extends Machine.Tagged, Data, const Id extends string = "evently">(
  options: Options<Name, E, Data, Id>
): ContainerApi<Name, E, Id> =>
  // The one cast left: the handlers are written once, for any machine (events `Machine.Tagged`, any data, any id).
  // Written for the caller's type parameters instead, effect's group types (`HttpApiGroup.Identifier<...>`, the
  // endpoints `handleAll` expects) are conditional types TypeScript cannot resolve on a type parameter, so no typed
  // value of the layers exists inside a generic function: the erased API is restated here with the caller's types.
  makeErased(options as unknown as Options<string, Machine.Tagged, unknown, string>) as unknown as ContainerApi<
    Name,
    E,
    Id
  >

const makeErased = (options: Options<string, Machine.Tagged, unknown, string>) => {
  const { name, machine, codec } = options
  const category = options.category ?? name.replace(/s$/, "")
  // Streams are `<category>-<id>`: a category that is not one (`to-do`, from the name `to-dos`) would name streams of
  // another category, which the index never sees. Refused when the API is defined, before any request.
  const categoryProblem = StreamName.categoryProblem(category)
  if (categoryProblem !== undefined) {
    throw new StreamName.InvalidStreamName({
      stream: category,
      reason: `as the stream category of the container type '${name}', ${categoryProblem}`
    })
  }
  const api = makeApi(name, EncodedNames.named(codec.schema), {
    id: options.apiId,
    title: options.title,
    version: options.version
  })
  const group = Handlers.layerGroup(api, Index, options, category)

  const indexLayer = Layer.effect(
    Index,
    ContainerIndex.make({
      category,
      machine,
      codec,
      subscription: options.indexSubscription,
      table: options.indexTable
    }).pipe(Effect.orDie)
  )

  const handlers = group.pipe(
    Layer.provideMerge(indexLayer),
    Layer.provideMerge(layerRequestGuard(options.maxBodyBytes))
  )

  const openapiPath = options.openapiPath === false ? undefined : (options.openapiPath ?? "/openapi.json")
  const docs =
    options.docsPath === false ? Layer.empty : HttpApiScalar.layer(api, { path: options.docsPath ?? "/docs" })
  const routes = Layer.mergeAll(HttpApiBuilder.layer(api, { openapiPath }), docs, Fallback.layerFallback(name)).pipe(
    Layer.provideMerge(handlers)
  )

  return { name, category, api, handlers, routes }
}

/**
 * A container type's API (one group, named after the container) and the layers that implement and serve it.
 *
 * @since 0.1.0
 * @category models
 */
export interface ContainerApi<Name extends string, E extends Machine.Tagged, Id extends string = "evently"> {
  readonly name: Name
  /** The category of the container's streams. */
  readonly category: string
  readonly api: ReturnType<typeof makeApi<Name, E, Id>>
  /** The handlers, the request guard and the index (kept by a subscription). */
  readonly handlers: Layer.Layer<
    HttpApiGroup.Service<Id, Name> | RequestGuard | Index,
    never,
    EventStore.EventStore | Subscriptions.Subscriptions
  >
  /** Every route: the resources, `/openapi.json` and the Scalar page at `/docs`; give it to `HttpRouter.serve`. */
  readonly routes: Layer.Layer<
    Index,
    never,
    EventStore.EventStore | Subscriptions.Subscriptions | HttpRouter.HttpRouter
  >
}
