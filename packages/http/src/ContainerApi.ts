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
import { Graph, Machine } from "@evently/machine"
import { CommandHandler, EventCodec, EventStore, StreamName, type Subscriptions } from "@evently/store"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import * as Stream from "effect/Stream"
import * as HttpIncomingMessage from "effect/http/HttpIncomingMessage"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServerRespondable from "effect/http/HttpServerRespondable"
import * as HttpServerError from "effect/http/HttpServerError"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as HttpApi from "effect/http-api/HttpApi"
import * as HttpApiBuilder from "effect/http-api/HttpApiBuilder"
import * as HttpApiEndpoint from "effect/http-api/HttpApiEndpoint"
import * as HttpApiError from "effect/http-api/HttpApiError"
import * as HttpApiGroup from "effect/http-api/HttpApiGroup"
import * as HttpApiMiddleware from "effect/http-api/HttpApiMiddleware"
import * as HttpApiScalar from "effect/http-api/HttpApiScalar"
import * as HttpApiSchema from "effect/http-api/HttpApiSchema"
import * as OpenApi from "effect/http-api/OpenApi"
import * as ContainerIndex from "./ContainerIndex.ts"
import * as EntityTags from "./internal/entityTags.ts"
import * as Idempotency from "./internal/idempotency.ts"
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
 * subscription's name and the OpenAPI title.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<Name extends string, E extends Machine.Tagged, Data> {
  readonly name: Name
  readonly machine: Machine.Machine<E, Data>
  readonly codec: EventCodec.EventCodec<E>
  readonly category?: string | undefined
  readonly requireIfMatch?: boolean | undefined
  readonly maxBodyBytes?: number | undefined
  readonly indexSubscription?: string | undefined
  readonly title?: string | undefined
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

const toPathSegment = (segment: PropertyKey | { readonly key: PropertyKey }): string | number => {
  const key = typeof segment === "object" ? segment.key : segment
  return typeof key === "number" ? key : String(key)
}

const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1()

const invalidRequest = (tag: string, errors: ReadonlyArray<Problem.Issue>) =>
  new Problem.InvalidRequest({
    tag,
    errors,
    detail: errors.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; ")
  })

const schemaProblem = (error: HttpApiError.HttpApiSchemaError) => {
  const slot = error.kind.toLowerCase()
  return invalidRequest(
    "SchemaError",
    formatIssues(error.cause.issue).issues.map((issue) => ({
      path: [slot, ...(issue.path ?? []).map(toPathSegment)],
      message: issue.message
    }))
  )
}

const tooLarge = (limit: number) =>
  new Problem.PayloadTooLarge({ tag: "PayloadTooLarge", limit, detail: `The request body exceeds ${limit} bytes` })

const isBodyTooLarge = (defect: unknown): boolean =>
  defect instanceof HttpServerError.HttpServerError &&
  defect.reason._tag === "RequestParseError" &&
  defect.reason.reason === "BodyTooLarge"

const unsupportedMediaType = (contentType: string) =>
  new Problem.UnsupportedMediaType({
    tag: "UnsupportedMediaType",
    contentType,
    supported: ["application/json"],
    detail: `The request body is ${contentType === "" ? "of no media type" : contentType}; send application/json`
  })

const internalError = (defect: unknown): Effect.Effect<never, Problem.InternalError> =>
  Effect.andThen(
    Effect.logError("Unexpected failure while handling a request", Cause.die(defect)),
    Effect.fail(
      new Problem.InternalError({ tag: "InternalError", detail: "The server failed unexpectedly; see its log" })
    )
  )

/**
 * The layer of {@link RequestGuard}: a body over `maxBodyBytes` (by `Content-Length`, or while it is read) is a 413
 * problem, a body that is not `application/json` a 415 problem, a request that does not decode a 400 problem, and a
 * defect a 500 problem (the defect is logged, not sent).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRequestGuard = (maxBodyBytes: number = defaultMaxBodyBytes): Layer.Layer<RequestGuard> =>
  Layer.succeed(RequestGuard, ((httpEffect: Effect.Effect<HttpServerResponse.HttpServerResponse, unknown>) =>
    Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const length = Number(request.headers["content-length"] ?? "0")
      if (Number.isFinite(length) && length > maxBodyBytes) return yield* tooLarge(maxBodyBytes)
      return yield* httpEffect.pipe(
        Effect.provideService(HttpIncomingMessage.MaxBodySize, maxBodyBytes as never),
        // The endpoints answer 415 (as text/plain) for a body they cannot read; nothing else of theirs is a 415.
        Effect.flatMap((response) =>
          response.status === 415
            ? Effect.fail(unsupportedMediaType(request.headers["content-type"] ?? ""))
            : Effect.succeed(response)
        ),
        Effect.catch((error) => {
          if (!HttpApiError.HttpApiSchemaError.is(error) || error.kind === "Body" || error.kind === "ResponseHeaders") {
            return Effect.fail(error)
          }
          return Effect.fail(schemaProblem(error))
        }),
        Effect.catchDefect((defect): Effect.Effect<never, Problem.PayloadTooLarge | Problem.InternalError> =>
          isBodyTooLarge(defect) ? Effect.fail(tooLarge(maxBodyBytes)) : internalError(defect)
        )
      )
    })) as never)

/** What the decider refuses besides the machine's own errors. */
class Missing extends Data.TaggedError("Missing")<{ readonly id: string }> {}
class Exists extends Data.TaggedError("Exists")<{ readonly id: string; readonly version: number }> {}
class Stale extends Data.TaggedError("Stale")<{ readonly expected: string; readonly actual: number }> {}

type RunProblem =
  | Problem.IllegalTransition
  | Problem.InvalidRequest
  | Problem.NotFound
  | Problem.AlreadyExists
  | Problem.PreconditionFailed
  | Problem.Contended
  | Problem.IdempotencyKeyReused
  | Problem.Unavailable
  | Problem.UnreadableEvent

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

const etagOf = (version: number) => `"${version}"`

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

const notFound = (id: string, what = `No container '${id}'`) =>
  new Problem.NotFound({ tag: "NotFound", id, detail: what })

const unavailable = (error: { readonly _tag: string; readonly message: string }) =>
  new Problem.Unavailable({ tag: error._tag, detail: error.message })

/**
 * A failed read as a problem: a stored event that cannot be read (a damaged row, or one the codec does not decode)
 * names its position; anything else is the store being unavailable.
 */
const readProblem = (error: {
  readonly _tag: string
  readonly message: string
}): Problem.UnreadableEvent | Problem.Unavailable =>
  error instanceof EventStore.UnreadableEvent || error instanceof EventCodec.EventDecodeError
    ? new Problem.UnreadableEvent({
        tag: error._tag,
        position: String(error.position),
        stream: error.stream,
        detail: error.message
      })
    : unavailable(error)

const keyReused = (key: string) =>
  new Problem.IdempotencyKeyReused({
    tag: "IdempotencyKeyReused",
    key,
    detail: `Idempotency-Key '${key}' was already used for another request on this resource; nothing was written`
  })

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
        success: IndexPage
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
        error: commandErrors
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
 * The `HttpApi` of one container type, with the parse options that report every bad field at once.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeApi = <const Name extends string, E extends Machine.Tagged>(
  name: Name,
  schema: Schema.Codec<E, { readonly _tag: string }>,
  title?: string
) =>
  HttpApi.make("evently")
    .add(makeGroup(name, schema))
    .annotate(HttpApi.ParseOptions, { errors: "all" })
    .annotate(HttpApi.HeadersParseOptions, {})
    .annotateMerge(OpenApi.annotations({ title: title ?? `${name} (evently)` }))

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
 * const tasks = ContainerApi.make({ name: "tasks", machine: TaskMachine, codec: EventCodec.make(TaskEvent) })
 * const server = HttpRouter.serve(tasks.routes).pipe(Layer.provide(NodeHttpServer.layer(createServer, { port })))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <const Name extends string, E extends Machine.Tagged, Data>(
  options: Options<Name, E, Data>
): ContainerApi<Name, E> => makeUntyped(options as unknown as Options<string, Machine.Tagged, unknown>) as never

/**
 * A container type's API (one group, named after the container) and the layers that implement and serve it.
 *
 * @since 0.1.0
 * @category models
 */
export interface ContainerApi<Name extends string, E extends Machine.Tagged> {
  readonly name: Name
  /** The category of the container's streams. */
  readonly category: string
  readonly api: ReturnType<typeof makeApi<Name, E>>
  /** The handlers, the request guard and the index (kept by a subscription). */
  readonly handlers: Layer.Layer<
    HttpApiGroup.Service<"evently", Name> | RequestGuard | Index,
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

/** The methods the router dispatches on, and those each resource takes. */
const routedMethods = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const
type RoutedMethod = (typeof routedMethods)[number]

const resourcesOf = (name: string): ReadonlyArray<readonly [HttpRouter.PathInput, ReadonlyArray<RoutedMethod>]> => [
  [`/${name}`, ["GET", "POST"]],
  [`/${name}/graph`, ["GET"]],
  [`/${name}/:id`, ["GET"]],
  [`/${name}/:id/events`, ["GET", "POST"]],
  [`/${name}/:id/events/:n`, ["GET"]]
]

/**
 * The routes that answer what no endpoint does under `/{name}`, as problems: a method a resource does not take is 405
 * (with `Allow`), any other path 404. Without them the router answers with an empty body.
 */
const layerFallback = (name: string) =>
  HttpRouter.addAll([
    ...resourcesOf(name).flatMap(([path, allowed]) =>
      routedMethods
        .filter((method) => !allowed.includes(method))
        .map((method) =>
          HttpRouter.route(
            method,
            path,
            Effect.map(
              HttpServerRespondable.toResponse(
                new Problem.MethodNotAllowed({
                  tag: "MethodNotAllowed",
                  method,
                  allow: allowed,
                  detail: `${method} is not allowed here (the log is immutable); allowed: ${allowed.join(", ")}`
                })
              ),
              HttpServerResponse.setHeader("allow", allowed.join(", "))
            )
          )
        )
    ),
    ...routedMethods.map((method) =>
      HttpRouter.route(method, `/${name}/:id/:rest/*`, (request) => {
        const full = request.url.split("?")[0]!
        const path = full.length > 200 ? `${full.slice(0, 200)}…` : full
        return HttpServerRespondable.toResponse(
          new Problem.NoRoute({ tag: "NoRoute", method, path, detail: `No resource has the path ${path}` })
        )
      })
    )
  ])

const makeUntyped = (options: Options<string, Machine.Tagged, unknown>) => {
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
  const api = makeApi(name, codec.schema, options.title)
  const decider = makeDecider(machine)
  const streamOf = (id: string) => `${category}-${id}`

  const group = HttpApiBuilder.group(
    api,
    name,
    Effect.fnUntraced(function* (handlers) {
      const store = yield* EventStore.EventStore
      const commands = yield* CommandHandler.make({ decider, codec })
      const index = yield* Index

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
          .pipe(
            Effect.catch((error): Effect.Effect<never, RunProblem> => {
              if (error instanceof Machine.IllegalTransition) {
                return Effect.fail(
                  new Problem.IllegalTransition({
                    tag: error._tag,
                    eventType: error.eventType,
                    state: error.state,
                    revision: error.revision,
                    allowed: error.allowed,
                    detail: error.message
                  })
                )
              }
              if (error instanceof Machine.MissingRequiredField) {
                return Effect.fail(
                  invalidRequest(
                    error._tag,
                    error.fields.map((field) => ({
                      path: ["payload", field],
                      message: `Event type '${error.eventType}' requires field '${field}'`
                    }))
                  )
                )
              }
              if (error instanceof Machine.InvalidAutomaticEvent) {
                return Effect.fail(invalidRequest(error._tag, [{ path: ["payload"], message: error.message }]))
              }
              if (error instanceof Missing) return Effect.fail(notFound(error.id))
              if (error instanceof Exists) {
                return Effect.fail(
                  new Problem.AlreadyExists({
                    tag: "AlreadyExists",
                    id: error.id,
                    version: error.version,
                    detail: `Container '${error.id}' already exists (version ${error.version})`
                  })
                )
              }
              if (error instanceof Stale) {
                return Effect.fail(
                  new Problem.PreconditionFailed({
                    tag: "PreconditionFailed",
                    expected: error.expected,
                    actual: error.actual,
                    detail: `If-Match ${error.expected} does not match the current version ${etagOf(error.actual)}`
                  })
                )
              }
              if (error instanceof CommandHandler.ConcurrencyRetriesExhausted) {
                return Effect.fail(
                  new Problem.Contended({ tag: error._tag, attempts: error.attempts, detail: error.message })
                )
              }
              // The event ids derived from the key are stored with other content: the key's first request differed.
              if (error instanceof EventStore.EventIdConflict) return Effect.fail(keyReused(idempotencyKey ?? ""))
              if (error instanceof EventStore.InvalidEvent) {
                return Effect.fail(invalidRequest(error._tag, [{ path: ["payload"], message: error.reason }]))
              }
              return Effect.fail(readProblem(error))
            })
          )
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
          Effect.map(index.list(query), (page) =>
            page.next === undefined ? { items: page.items } : { items: page.items, next: page.next }
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
          const container = yield* run({ id, event: payload, create: true, ifMatch: undefined }, key)
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

  const indexLayer = Layer.effect(
    Index,
    ContainerIndex.make({ category, machine, codec, subscription: options.indexSubscription })
  )

  const handlers = group.pipe(
    Layer.provideMerge(indexLayer),
    Layer.provideMerge(layerRequestGuard(options.maxBodyBytes))
  )

  const openapiPath = options.openapiPath === false ? undefined : (options.openapiPath ?? "/openapi.json")
  const docs =
    options.docsPath === false ? Layer.empty : HttpApiScalar.layer(api, { path: options.docsPath ?? "/docs" })
  const routes = Layer.mergeAll(HttpApiBuilder.layer(api, { openapiPath }), docs, layerFallback(name)).pipe(
    Layer.provideMerge(handlers)
  )

  return { name, category, api, handlers, routes }
}
