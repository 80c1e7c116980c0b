/**
 * A container resource that goes through the domain: built from a command handler's decider and codec and a Schema
 * union of its commands, it serves each command as an endpoint, so every request is decided by the user's rules
 * (and checked by the machine when the decider is `Machine.decider`) before anything is appended.
 *
 * - `POST /accounts/{id}/{Command}` (one endpoint per command of the union; the body is the command's fields without
 *   `_tag`) loads the stream, decides, appends with the loaded version (retrying on a concurrent change as the
 *   handler's retry policy allows) and answers 200 with `{ id, version, state }`, `ETag: "<version>"` and
 *   `Location: /accounts/{id}`. `If-Match` is checked against the version loaded for the decision (412 when it
 *   differs, on any attempt: a conditional command never lands on a version the client did not see);
 *   `Idempotency-Key` is the command id (the same key again returns the first result; with another body, 422).
 * - The decider's domain errors (the `errors` option: `Schema.TaggedError` classes) are `application/problem+json`
 *   with their status (409 by default, or 422) and their fields; the machine's refusal is a 409 `IllegalTransition`.
 * - `GET /accounts/{id}`: the current state and its `ETag` (404 when the stream has no event).
 * - An unknown command is a 404 problem that names the commands there are. The OpenAPI document lists every command
 *   with its body schema (named after the command) and every error it can answer.
 *
 * Raw events cannot be posted here: `ContainerApi` (the machine's events as resources) is the opt-in for that.
 *
 * The commands' handler comes from the `CommandHandler.Maker` in context: by default a local `CommandHandler`, and
 * with `ClusterHandlers.layer` of `@evently/cluster` a cluster entity named after the resource (`name`), so every
 * process serving the resource sends a stream's commands (and `GET`s) to that stream's owner. The raw events'
 * handler, when turned on, stays local.
 *
 * @since 0.2.0
 */
import { Machine, type Decider } from "@evently/machine"
import { CommandHandler, EventCodec, EventStore, StreamName } from "@evently/store"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServerRespondable from "effect/http/HttpServerRespondable"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as HttpApi from "effect/http-api/HttpApi"
import * as HttpApiBuilder from "effect/http-api/HttpApiBuilder"
import * as HttpApiEndpoint from "effect/http-api/HttpApiEndpoint"
import * as HttpApiGroup from "effect/http-api/HttpApiGroup"
import * as HttpApiScalar from "effect/http-api/HttpApiScalar"
import * as HttpApiSchema from "effect/http-api/HttpApiSchema"
import * as OpenApi from "effect/http-api/OpenApi"
import * as ContainerApi from "./ContainerApi.ts"
import * as EntityTags from "./internal/entityTags.ts"
import * as EncodedNames from "./internal/encodedNames.ts"
import * as Idempotency from "./internal/idempotency.ts"
import { packageVersion } from "./internal/version.ts"
import * as Problem from "./Problem.ts"

/**
 * A domain error the decider may return, as its `Schema.TaggedError` class (answered with 409 Conflict), or with the
 * status to answer it with: 409 when the state forbids the command now (an account closed), 422 when the command
 * cannot be carried out as asked (an overdraft).
 *
 * @since 0.2.0
 * @category models
 */
export type DomainError =
  | DomainErrorSchema
  | { readonly schema: DomainErrorSchema; readonly status: 409 | 422; readonly title?: string | undefined }

/**
 * What a domain error's class must be: a Schema with its fields, `_tag` among them.
 *
 * @since 0.2.0
 * @category models
 */
export interface DomainErrorSchema {
  readonly fields: { readonly _tag: Schema.Top } & Schema.Struct.Fields
}

/**
 * A Schema union of tagged commands (`Schema.TaggedUnion({ Open: { owner: Schema.String }, Close: {} })`): one
 * endpoint per case.
 *
 * @since 0.2.0
 * @category models
 */
export interface Commands<Command> {
  readonly Type: Command
  readonly cases: Record<string, { readonly fields: Schema.Struct.Fields }>
}

/**
 * What the resource is built from: its path segment `name`, the command `handler` (its options, or a
 * `CommandHandler.Service` class), the `commands` union, the `state` Schema (how a state is sent), the domain
 * `errors`, and options as in `ContainerApi`.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options<
  Name extends string,
  Command,
  Event extends { readonly _tag: string },
  State,
  Error,
  MachineData = unknown
> {
  readonly name: Name
  readonly handler:
    | CommandHandler.Options<Command, Event, State, Error>
    | { readonly options: CommandHandler.Options<Command, Event, State, Error, unknown> }
  readonly commands: Commands<Command>
  readonly state: Schema.Codec<State, unknown>
  readonly errors?: ReadonlyArray<DomainError> | undefined
  /** The stream category (default: `name` without a trailing `s`). */
  readonly category?: string | undefined
  /**
   * Raw events (microcosm's style) are off: the events of this resource come from its commands. Given a machine of
   * the events, `POST /{name}/{id}/events` takes one event as its body, checks it against the machine (not the
   * decider: no domain rule applies) and appends it with the loaded version. Turn it on only for trusted clients.
   */
  readonly rawEvents?: { readonly machine: Machine.Machine<Event, MachineData> } | undefined
  /** Commands without `If-Match` fail with 428. */
  readonly requireIfMatch?: boolean | undefined
  readonly maxBodyBytes?: number | undefined
  /** The API's id (default `evently`): the id of its `HttpApi`. */
  readonly apiId?: string | undefined
  /** The API's title in the OpenAPI document (default `<name> (evently)`). */
  readonly title?: string | undefined
  /** The API's version in the OpenAPI document (default: the version of `@evently/http`). */
  readonly version?: string | undefined
  readonly openapiPath?: `/${string}` | false | undefined
  readonly docsPath?: `/${string}` | false | undefined
}

/**
 * A container's state as the resource sends it.
 *
 * @since 0.2.0
 * @category models
 */
export interface Container<State> {
  readonly id: string
  readonly version: number
  readonly state: State
}

/**
 * The resource: its API (one group, `name`), the `group` to add to an API of several containers, and the layers that
 * implement (`handlers`) and serve (`routes`) it.
 *
 * @since 0.2.0
 * @category models
 */
export interface CommandApi<Name extends string> {
  readonly name: Name
  readonly category: string
  readonly commandTags: ReadonlyArray<string>
  readonly group: HttpApiGroup.Top
  readonly api: HttpApi.HttpApi<string, HttpApiGroup.Top>
  readonly handlers: Layer.Layer<never, never, EventStore.EventStore>
  readonly routes: Layer.Layer<never, never, EventStore.EventStore | HttpRouter.HttpRouter>
  /** The handlers of this resource's group inside an API of several containers (see {@link serve}). */
  readonly handlersFor: (
    api: HttpApi.HttpApi<string, HttpApiGroup.Top>
  ) => Layer.Layer<never, never, EventStore.EventStore>
  /** The route that answers an unknown command with a problem naming the commands there are. */
  readonly unknownCommand: Layer.Layer<never, never, HttpRouter.HttpRouter>
}

/** A request to a command endpoint, as its schemas decode it (the get endpoint reads only `params`). */
interface CommandRequest {
  readonly params: { readonly id: string }
  readonly headers: { readonly "if-match"?: string | undefined; readonly "idempotency-key"?: string | undefined }
  readonly payload: object
}

/**
 * The handlers of a resource's group. Its endpoints are made at run time, one per command of the union, and the
 * group joins an API that may hold other containers' groups, so it is an `HttpApiGroup.Top`: effect's `Handlers`
 * then knows neither the endpoints' names nor their requests, and no typed value of them exists. This is what they
 * are, by the schemas each endpoint decodes with.
 */
interface GroupHandlers {
  readonly handle: (
    name: string,
    handler: (request: CommandRequest) => Effect.Effect<unknown, unknown>
  ) => GroupHandlers
}

/** The `If-Match` the command was sent with, and the version the decision was made on when they differ. */
class Stale extends Schema.TaggedError<Stale>("@evently/http/CommandApi/Stale")("Stale", {
  expected: Schema.String,
  actual: Schema.Int
}) {}

interface Envelope<Command> {
  readonly command: Command
  readonly ifMatch: string | undefined
}

interface Versioned<State> {
  readonly version: number
  readonly state: State
}

/** The user's decider, keeping the version beside the state and checking `If-Match` against it on every attempt. */
const versioned = <Command, Event, State, Error>(
  decider: Decider.Decider<Command, Event, State, Error>
): Decider.Decider<Envelope<Command>, Event, Versioned<State>, Error | Stale> => ({
  initial: { version: 0, state: decider.initial },
  evolve: (current, event) => ({ version: current.version + 1, state: decider.evolve(current.state, event) }),
  decide: (envelope, current) => {
    if (envelope.ifMatch !== undefined) {
      const tags = EntityTags.parse(envelope.ifMatch)
      if (tags !== "*" && !(tags ?? []).some((tag) => tag.version === current.version)) {
        return Result.fail(new Stale({ expected: envelope.ifMatch, actual: current.version }))
      }
    }
    return decider.decide(envelope.command, current.state)
  }
})

const etagOf = (version: number) => `"${version}"`

/**
 * How the resource's handler crosses a process boundary (see `CommandHandler.Maker`): the command with its
 * `If-Match`, the state with its version, and the errors its decisions can fail with (the domain's, the machine's
 * refusal, and `Stale`), each a Schema class so that it arrives as itself.
 */
const wireOf = <Command, State>(
  name: string,
  options: {
    readonly commands: Commands<Command>
    readonly state: Schema.Codec<State, unknown>
    readonly errors?: ReadonlyArray<DomainError> | undefined
  }
): CommandHandler.Wire<Envelope<Command>, Versioned<State>> => ({
  name,
  // A `Schema.TaggedUnion`: `Commands` names only what the endpoints read of it.
  commands: Schema.Struct({
    command: options.commands as unknown as Schema.Codec<Command, unknown>,
    ifMatch: Schema.optional(Schema.String)
  }) as unknown as Schema.Codec<Envelope<Command>, unknown>,
  state: Schema.Struct({ version: Schema.Int, state: options.state }),
  errors: [
    ...(options.errors ?? []).map((entry) => ("schema" in entry ? entry.schema : entry) as unknown as Schema.Top),
    Machine.IllegalTransition,
    Stale
  ]
})

const idempotencyKey = Schema.optional(Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(200)))

const standardErrors = [
  Problem.IllegalTransition,
  Problem.Contended,
  Problem.PreconditionFailed,
  Problem.PreconditionRequired,
  Problem.IdempotencyKeyReused,
  Problem.Unavailable,
  Problem.UnreadableEvent
] as const

/** A domain error on the wire, the way `HttpApiError.Problem` declares one, with its schema named after the error. */
interface DomainProblem {
  new (fields: Record<string, unknown>): object
}

const domainProblem = (name: string, status: number, title: string, fields: Schema.Struct.Fields): DomainProblem => {
  const struct = Schema.Struct({
    detail: Schema.optionalKey(Schema.String),
    ...fields,
    tag: Schema.tag(name),
    type: Schema.tag(`urn:evently:problem:${name}`),
    status: Schema.tag(status),
    title: Schema.tag(title)
  }).annotate({ identifier: name })
  const encode = Schema.encodeUnknownEffect(struct)
  const Base = Schema.Error<{ readonly _tag: string }>(name)(struct, {
    description: title,
    httpApiStatus: status,
    "~httpApiEncoding": { _tag: "Json", contentType: "application/problem+json" }
  })
  Object.assign(Base.prototype, {
    _tag: name,
    [HttpServerRespondable.symbol](this: object) {
      return Effect.map(encode(this), (body) =>
        HttpServerResponse.jsonUnsafe(body, { status, contentType: "application/problem+json" })
      )
    }
  })
  return Base as unknown as DomainProblem
}

const reservedMembers = new Set(["type", "status", "title", "detail", "instance", "tag"])

/** A problem class for each domain error: `urn:evently:problem:<tag>`, its status, and the error's own fields. */
const domainProblems = (errors: ReadonlyArray<DomainError>) =>
  new Map(
    errors.map((entry) => {
      const { schema, status, title } =
        "schema" in entry ? entry : { schema: entry, status: 409 as const, title: undefined }
      const { _tag, ...all } = schema.fields
      // A problem's own members are not the error's to set: an error field of that name is not sent.
      const fields = Object.fromEntries(Object.entries(all).filter(([field]) => !reservedMembers.has(field)))
      const tag = (_tag.ast as { readonly literal?: unknown }).literal
      const name = typeof tag === "string" ? tag : String(tag)
      const problem = domainProblem(name, status, title ?? name, fields)
      return [name, { problem, fields: Object.keys(fields) }] as const
    })
  )

const readProblem = (error: { readonly _tag: string; readonly message: string }) =>
  error instanceof EventStore.UnreadableEvent || error instanceof EventCodec.EventDecodeError
    ? new Problem.UnreadableEvent({
        tag: error._tag,
        position: String(error.position),
        stream: error.stream,
        detail: error.message
      })
    : new Problem.Unavailable({ tag: error._tag, detail: error.message })

const keyReused = (key: string) =>
  new Problem.IdempotencyKeyReused({
    tag: "IdempotencyKeyReused",
    key,
    detail: `Idempotency-Key '${key}' was already used for another request on this resource; nothing was written`
  })

const toContainer = <State>(id: string, current: Versioned<State>): Container<State> => ({
  id,
  version: current.version,
  state: current.state
})

/**
 * Builds the resource of a command handler.
 *
 * ```ts
 * import { NodeHttpServer } from "@effect/platform-node"
 * import { CommandApi } from "@evently/http"
 * import { CommandHandler, EventCodec, EventStore } from "@evently/store"
 * import * as Layer from "effect/Layer"
 * import * as Result from "effect/Result"
 * import * as Schema from "effect/Schema"
 * import * as HttpRouter from "effect/http/HttpRouter"
 * import { createServer } from "node:http"
 *
 * const AccountEvent = Schema.TaggedUnion({ Opened: { owner: Schema.String }, Withdrawn: { amount: Schema.Int } })
 * type AccountEvent = typeof AccountEvent.Type
 * const AccountCommand = Schema.TaggedUnion({ Open: { owner: Schema.String }, Withdraw: { amount: Schema.Int } })
 * type AccountCommand = typeof AccountCommand.Type
 * // Its identifier names the state in the OpenAPI document.
 * const Account = Schema.Struct({ owner: Schema.String, balance: Schema.Int }).annotate({ identifier: "Account" })
 * type Account = typeof Account.Type
 *
 * class Overdrawn extends Schema.TaggedError<Overdrawn>("app/Overdrawn")("Overdrawn", {
 *   balance: Schema.Int,
 *   amount: Schema.Int
 * }) {}
 *
 * const decide = (command: AccountCommand, account: Account): Result.Result<ReadonlyArray<AccountEvent>, Overdrawn> => {
 *   if (command._tag === "Open") return Result.succeed([AccountEvent.cases.Opened.make({ owner: command.owner })])
 *   return command.amount > account.balance
 *     ? Result.fail(new Overdrawn({ balance: account.balance, amount: command.amount }))
 *     : Result.succeed([AccountEvent.cases.Withdrawn.make({ amount: command.amount })])
 * }
 *
 * class Accounts extends CommandHandler.Service<Accounts>()("app/Accounts", {
 *   decider: {
 *     initial: { owner: "", balance: 0 },
 *     evolve: (account: Account, event: AccountEvent): Account =>
 *       event._tag === "Opened"
 *         ? { owner: event.owner, balance: 100 }
 *         : { ...account, balance: account.balance - event.amount },
 *     decide
 *   },
 *   codec: EventCodec.make(AccountEvent)
 * }) {}
 *
 * const accounts = CommandApi.make({
 *   name: "accounts",
 *   handler: Accounts, // a CommandHandler.Service, or its { decider, codec }
 *   commands: AccountCommand,
 *   state: Account,
 *   errors: [{ schema: Overdrawn, status: 422 }] // 409 when no status is given
 * })
 *
 * // POST /accounts/{id}/Open, POST /accounts/{id}/Withdraw, GET /accounts/{id}, /openapi.json and /docs
 * export const server = HttpRouter.serve(accounts.routes).pipe(
 *   Layer.provide(NodeHttpServer.layer(createServer, { port: 3000 })),
 *   Layer.provide(EventStore.layerMemory)
 * )
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = <
  const Name extends string,
  Command,
  Event extends { readonly _tag: string },
  State,
  Error,
  MachineData = unknown
>(
  options: Options<Name, Command, Event, State, Error, MachineData>
): CommandApi<Name> => {
  const { name } = options
  const handlerOptions = (
    "options" in options.handler ? options.handler.options : options.handler
  ) as CommandHandler.Options<Command, Event, State, Error>
  const category = options.category ?? name.replace(/s$/, "")
  const categoryProblem = StreamName.categoryProblem(category)
  if (categoryProblem !== undefined) {
    throw new StreamName.InvalidStreamName({
      stream: category,
      reason: `as the stream category of the container type '${name}', ${categoryProblem}`
    })
  }
  const streamOf = (id: string) => `${category}-${id}`
  const commandTags = Object.keys(options.commands.cases)
  const problems = domainProblems(options.errors ?? [])
  const errorSchemas = [
    ...standardErrors,
    ...[...problems.values()].map((entry) => entry.problem as unknown as Schema.Top)
  ]

  const ContainerSchema = Schema.Struct({
    id: Schema.String,
    version: Schema.Int,
    state: EncodedNames.named(options.state)
  })

  const get = HttpApiEndpoint.get("get", "/:id", {
    params: { id: ContainerApi.Id },
    success: HttpApiSchema.WithHeaders(ContainerSchema, { etag: Schema.String }),
    error: [Problem.NotFound, Problem.Unavailable, Problem.UnreadableEvent]
  })
  const commandEndpoints = commandTags.map((tag) => {
    const { _tag: _ignored, ...fields } = options.commands.cases[tag]!.fields
    return HttpApiEndpoint.post(tag, `/:id/${tag}`, {
      params: { id: ContainerApi.Id },
      headers: { "if-match": Schema.optional(Schema.String), "idempotency-key": idempotencyKey },
      payload: Schema.Struct(fields).annotate({ identifier: tag }),
      success: HttpApiSchema.WithHeaders(ContainerSchema, { etag: Schema.String, location: Schema.String }),
      error: errorSchemas
    })
  })
  const rawEndpoint =
    options.rawEvents === undefined
      ? []
      : [
          HttpApiEndpoint.post("events", "/:id/events", {
            params: { id: ContainerApi.Id },
            headers: { "if-match": Schema.optional(Schema.String), "idempotency-key": idempotencyKey },
            payload: EncodedNames.named(handlerOptions.codec.schema),
            success: HttpApiSchema.WithHeaders(ContainerSchema, { etag: Schema.String, location: Schema.String }),
            error: errorSchemas
          })
        ]
  const group = HttpApiGroup.make(name)
    .add(get)
    .add(...(commandEndpoints as unknown as [typeof get]))
    .add(...(rawEndpoint as unknown as [typeof get]))
    .middleware(ContainerApi.RequestGuard)
    .prefix(`/${name}`) as unknown as HttpApiGroup.Top
  const api: HttpApi.HttpApi<string, HttpApiGroup.Top> = HttpApi.make(options.apiId ?? "evently")
    .add(group)
    .annotate(HttpApi.ParseOptions, { errors: "all" })
    .annotate(HttpApi.HeadersParseOptions, {})
    .annotateMerge(
      OpenApi.annotations({
        title: options.title ?? `${name} (evently)`,
        version: options.version ?? packageVersion
      })
    )

  /** A refusal or failure of the handler as the problem the client gets. */
  const toProblem = (error: unknown, key: string | undefined): Effect.Effect<never, unknown> => {
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
    if (error instanceof CommandHandler.ConcurrencyRetriesExhausted) {
      return Effect.fail(new Problem.Contended({ tag: error._tag, attempts: error.attempts, detail: error.message }))
    }
    if (error instanceof EventStore.EventIdConflict) return Effect.fail(keyReused(key ?? ""))
    const tag =
      typeof error === "object" && error !== null && "_tag" in error && typeof error._tag === "string"
        ? error._tag
        : undefined
    const domain = tag === undefined ? undefined : problems.get(tag)
    if (domain !== undefined) {
      const source = error as Record<string, unknown>
      const fields = Object.fromEntries(domain.fields.map((field) => [field, source[field]]))
      const message = error instanceof globalThis.Error && error.message !== "" ? error.message : tag!
      return Effect.fail(new domain.problem({ ...fields, detail: message }))
    }
    if (typeof error === "object" && error !== null && "message" in error && tag !== undefined) {
      return Effect.fail(readProblem(error as { readonly _tag: string; readonly message: string }))
    }
    return Effect.die(error)
  }

  const { snapshot: _noSnapshot, ...localOptions } = handlerOptions
  const wire = wireOf(name, options)

  const handlersFor = (target: HttpApi.HttpApi<string, HttpApiGroup.Top>) =>
    HttpApiBuilder.group(
      target,
      name,
      Effect.fnUntraced(function* (routes) {
        const store = yield* EventStore.EventStore
        // The command handler comes from the `CommandHandler.Maker` in context: local by default, or a cluster's.
        const makeHandler = yield* CommandHandler.Maker
        const commands = yield* makeHandler({ ...localOptions, decider: versioned(handlerOptions.decider) }, wire)

        /** Whether the first handling of an idempotency key had this fingerprint (stored with its first event). */
        const isSameRequest = Effect.fnUntraced(function* (
          id: string,
          fingerprint: string,
          handled: CommandHandler.Handled<Event, Versioned<State>>
        ) {
          const from = handled.version - handled.events.length + 1
          const first = yield* Stream.runHead(store.readStream(streamOf(id), { from, limit: 1 })).pipe(
            Effect.mapError(readProblem)
          )
          const stored = first._tag === "Some" ? first.value.metadata.headers?.[Idempotency.header] : undefined
          return stored === undefined || stored === fingerprint
        })

        // Raw events, when turned on: the machine's check, then the event as the decision. Always handled here (not
        // through the Maker): the exact-version append keeps them consistent with the commands handled elsewhere.
        const machine = options.rawEvents?.machine
        const events =
          machine === undefined
            ? undefined
            : yield* CommandHandler.make({
                ...handlerOptions,
                snapshot: undefined,
                decider: versioned(Machine.decider(machine, (event: Event) => Result.succeed([event])))
              })

        const runCommand = (tag: string) =>
          Effect.fnUntraced(function* (request: {
            readonly params: { readonly id: string }
            readonly headers: {
              readonly "if-match"?: string | undefined
              readonly "idempotency-key"?: string | undefined
            }
            readonly payload: object
          }) {
            const { id } = request.params
            const ifMatch = request.headers["if-match"]
            const key = request.headers["idempotency-key"]
            if (ifMatch === undefined && options.requireIfMatch === true) {
              return yield* new Problem.PreconditionRequired({
                tag: "PreconditionRequired",
                detail: "This server requires If-Match on commands: GET the container and send its ETag"
              })
            }
            if (ifMatch !== undefined && EntityTags.parse(ifMatch) === undefined) {
              return yield* new Problem.InvalidRequest({
                tag: "InvalidIfMatch",
                errors: [
                  {
                    path: ["headers", "if-match"],
                    message: `expected * or version ETags such as "3", got ${JSON.stringify(ifMatch)}`
                  }
                ],
                detail: "If-Match is not * nor a list of version ETags"
              })
            }
            const raw = tag === "events" && events !== undefined
            const command = (raw ? request.payload : { _tag: tag, ...request.payload }) as Command
            const fingerprint =
              key === undefined
                ? undefined
                : yield* Idempotency.fingerprint({ endpoint: tag, id, event: request.payload })
            const handled = yield* (raw ? (events as unknown as typeof commands) : commands)
              .handle(
                streamOf(id),
                { command, ifMatch },
                {
                  commandId: key,
                  headers: fingerprint === undefined ? undefined : { [Idempotency.header]: fingerprint }
                }
              )
              .pipe(Effect.catch((error) => toProblem(error, key)))
            if (handled.duplicate && key !== undefined && fingerprint !== undefined) {
              if (!(yield* isSameRequest(id, fingerprint, handled))) return yield* keyReused(key)
            }
            // A raw event's handler folds the machine's state: the resource sends the domain's.
            const state = raw
              ? (yield* commands.load(streamOf(id)).pipe(Effect.mapError(readProblem))).state
              : handled.state
            const container = toContainer(id, state)
            return HttpApiSchema.withHeaders({
              body: container,
              headers: { etag: etagOf(container.version), location: `/${name}/${id}` }
            })
          })

        // The group's endpoints exist only at run time, so its type is erased (see `GroupHandlers`).
        let built = (routes as unknown as GroupHandlers).handle(
          "get",
          Effect.fnUntraced(function* ({ params }: { readonly params: { readonly id: string } }) {
            const loaded = yield* commands.load(streamOf(params.id)).pipe(Effect.mapError(readProblem))
            if (loaded.version === 0) {
              return yield* new Problem.NotFound({
                tag: "NotFound",
                id: params.id,
                detail: `No container '${params.id}'`
              })
            }
            const container = toContainer(params.id, loaded.state)
            return HttpApiSchema.withHeaders({ body: container, headers: { etag: etagOf(container.version) } })
          })
        )
        for (const tag of commandTags) built = built.handle(tag, runCommand(tag))
        if (events !== undefined) built = built.handle("events", runCommand("events"))
        return built as unknown as HttpApiBuilder.Handlers<never>
      })
    ) as unknown as Layer.Layer<never, never, EventStore.EventStore>

  const guardedFor = (target: HttpApi.HttpApi<string, HttpApiGroup.Top>) =>
    handlersFor(target).pipe(Layer.provideMerge(ContainerApi.layerRequestGuard(options.maxBodyBytes)))
  const guarded = guardedFor(api)

  const unknownCommand = HttpRouter.add("POST", `/${name}/:id/:command`, (request) => {
    const command = decodeURIComponent(request.url.split("?")[0]!.split("/").pop() ?? "")
    return HttpServerRespondable.toResponse(
      new Problem.NoRoute({
        tag: "UnknownCommand",
        method: "POST",
        path: `/${name}/{id}/${command.slice(0, 100)}`,
        detail: `unknown command '${command.slice(0, 100)}'; expected one of ${commandTags.join(", ")}`
      })
    )
  })

  const openapiPath = options.openapiPath === false ? undefined : (options.openapiPath ?? "/openapi.json")
  const docs =
    options.docsPath === false ? Layer.empty : HttpApiScalar.layer(api, { path: options.docsPath ?? "/docs" })
  const routes = Layer.mergeAll(HttpApiBuilder.layer(api, { openapiPath }), docs, unknownCommand).pipe(
    Layer.provideMerge(guarded)
  ) as unknown as Layer.Layer<never, never, EventStore.EventStore | HttpRouter.HttpRouter>

  return {
    name,
    category,
    commandTags,
    group,
    api,
    handlers: guarded as unknown as Layer.Layer<never, never, EventStore.EventStore>,
    routes,
    handlersFor: (shared) => guardedFor(shared) as unknown as Layer.Layer<never, never, EventStore.EventStore>,
    unknownCommand
  }
}

/**
 * Serves several containers as one API: one OpenAPI document (its `id`, default `evently`, `title`, default the
 * containers' names, and `version`, default the version of `@evently/http`) listing every container's commands,
 * states and errors.
 *
 * ```ts
 * import { NodeHttpServer } from "@effect/platform-node"
 * import { CommandApi } from "@evently/http"
 * import { EventCodec, EventStore } from "@evently/store"
 * import * as Layer from "effect/Layer"
 * import * as Result from "effect/Result"
 * import * as Schema from "effect/Schema"
 * import * as HttpRouter from "effect/http/HttpRouter"
 * import { createServer } from "node:http"
 *
 * // One counter domain, served twice: as `counters` and as `tallies`.
 * const Added = Schema.TaggedUnion({ Added: { amount: Schema.Int } })
 * const Add = Schema.TaggedUnion({ Add: { amount: Schema.Int } })
 * const counter = (name: string) =>
 *   CommandApi.make({
 *     name,
 *     handler: {
 *       decider: {
 *         initial: 0,
 *         evolve: (total: number, event: typeof Added.Type) => total + event.amount,
 *         decide: (command: typeof Add.Type) => Result.succeed([Added.cases.Added.make({ amount: command.amount })])
 *       },
 *       codec: EventCodec.make(Added)
 *     },
 *     commands: Add,
 *     state: Schema.Int
 *   })
 *
 * // One OpenAPI document at /openapi.json for both, with this id, title and version.
 * export const server = HttpRouter.serve(
 *   CommandApi.serve({ id: "bank", title: "Bank", version: "1.0.0" }, [counter("counters"), counter("tallies")])
 * ).pipe(Layer.provide(NodeHttpServer.layer(createServer, { port: 3000 })), Layer.provide(EventStore.layerMemory))
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const serve = (
  apiOptions: {
    readonly id?: string | undefined
    readonly title?: string | undefined
    readonly version?: string | undefined
    readonly openapiPath?: `/${string}` | false | undefined
    readonly docsPath?: `/${string}` | false | undefined
  },
  resources: ReadonlyArray<CommandApi<string>>
): Layer.Layer<never, never, EventStore.EventStore | HttpRouter.HttpRouter> => {
  let api = HttpApi.make(apiOptions.id ?? "evently") as unknown as HttpApi.HttpApi<string, HttpApiGroup.Top>
  for (const resource of resources) api = api.add(resource.group)
  api = api
    .annotate(HttpApi.ParseOptions, { errors: "all" })
    .annotate(HttpApi.HeadersParseOptions, {})
    .annotateMerge(
      OpenApi.annotations({
        title: apiOptions.title ?? resources.map((resource) => resource.name).join(", "),
        version: apiOptions.version ?? packageVersion
      })
    )
  const openapiPath = apiOptions.openapiPath === false ? undefined : (apiOptions.openapiPath ?? "/openapi.json")
  const docs =
    apiOptions.docsPath === false ? Layer.empty : HttpApiScalar.layer(api, { path: apiOptions.docsPath ?? "/docs" })
  const handlers = resources
    .map((resource) => resource.handlersFor(api))
    .reduce((all, one) => Layer.merge(all, one), Layer.empty as Layer.Layer<never, never, EventStore.EventStore>)
  const unknownCommands = resources
    .map((resource) => resource.unknownCommand)
    .reduce((all, one) => Layer.merge(all, one), Layer.empty as Layer.Layer<never, never, HttpRouter.HttpRouter>)
  return Layer.mergeAll(HttpApiBuilder.layer(api, { openapiPath }), docs, unknownCommands).pipe(
    Layer.provideMerge(handlers)
  ) as unknown as Layer.Layer<never, never, EventStore.EventStore | HttpRouter.HttpRouter>
}
