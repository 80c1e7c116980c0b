/**
 * The OpenAPI documents of `ContainerApi` and `CommandApi` speak the user's names: every schema is named as its
 * author named it (our problems after their tag, the user's classes after themselves, never `<Name>Encoded`), and
 * the API's id, title and version are the user's, the version defaulting to that of `@evently/http`.
 */
import { assert, describe, it } from "@effect/vitest"
import { CommandApi, ContainerApi } from "@evently/http"
import { Machine, Rule } from "@evently/machine"
import { EventCodec } from "@evently/store"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type * as HttpApi from "effect/http-api/HttpApi"
import type * as HttpApiGroup from "effect/http-api/HttpApiGroup"
import * as OpenApi from "effect/http-api/OpenApi"
import { readFileSync } from "node:fs"
import { TaskEvent, TaskMachine } from "../../../examples/task-list/src/TaskMachine.ts"
import { AccountCommand, AccountMachine, Accounts, AccountState, BalanceNotZero, NotOpen, Overdrawn } from "./Bank.ts"

const packageVersion = (
  JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { readonly version: string }
).version

const schemaNames = <Id extends string, Groups extends HttpApiGroup.Constraint>(api: HttpApi.HttpApi<Id, Groups>) =>
  Object.keys(OpenApi.fromApi(api).components.schemas)

const assertNoEncodedName = (names: ReadonlyArray<string>) =>
  assert.deepStrictEqual(
    names.filter((name) => name.endsWith("Encoded")),
    [],
    names.join(", ")
  )

const bank = {
  name: "accounts",
  handler: Accounts,
  commands: AccountCommand,
  state: AccountState,
  errors: [{ schema: Overdrawn, status: 422 as const }, BalanceNotZero, NotOpen]
}

// A domain written with classes: the state a `Schema.Class`, the events `Schema.TaggedClass`es.
class Door extends Schema.Class<Door>("Door")({ open: Schema.Boolean }) {}
class Opened extends Schema.TaggedClass<Opened>()("Opened", { by: Schema.String }) {}
class Shut extends Schema.TaggedClass<Shut>()("Shut", {}) {}
const DoorEvent = Schema.Union([Opened, Shut]).pipe(Schema.toTaggedUnion("_tag"))
type DoorEvent = typeof DoorEvent.Type
const DoorMachine = Machine.make(DoorEvent, {
  Opened: { follows: Rule.anyOf(Rule.nothing(), Rule.event("Shut")) },
  Shut: { follows: Rule.event("Opened") }
})
const DoorCommand = Schema.TaggedUnion({ Open: { by: Schema.String }, Shut: {} })
const doorHandler = {
  decider: {
    initial: new Door({ open: false }),
    evolve: (_door: Door, event: DoorEvent) => new Door({ open: event._tag === "Opened" }),
    decide: (command: typeof DoorCommand.Type) =>
      Result.succeed([command._tag === "Open" ? new Opened({ by: command.by }) : new Shut({})])
  },
  codec: EventCodec.make(DoorEvent)
}

describe("OpenAPI schema names", () => {
  it("ContainerApi: the problems are named after their tag, never <Tag>Encoded", () => {
    const names = schemaNames(
      ContainerApi.make({ name: "tasks", machine: TaskMachine, codec: EventCodec.make(TaskEvent) }).api
    )
    assertNoEncodedName(names)
    assert.includeMembers(names, ["NotFound", "IllegalTransition", "PreconditionFailed", "InvalidRequest", "Container"])
  })

  it("CommandApi: the problems, the user's errors, commands and state, each under its own name", () => {
    const names = schemaNames(CommandApi.make({ ...bank, rawEvents: { machine: AccountMachine } }).api)
    assertNoEncodedName(names)
    assert.includeMembers(names, ["NotFound", "Contended", "Overdrawn", "BalanceNotZero", "Withdraw", "Account"])
  })

  it("the user's classes keep their names: a Schema.Class state, Schema.TaggedClass events", () => {
    const doors = CommandApi.make({
      name: "doors",
      handler: doorHandler,
      commands: DoorCommand,
      state: Door,
      rawEvents: { machine: DoorMachine }
    })
    const commandNames = schemaNames(doors.api)
    assertNoEncodedName(commandNames)
    assert.includeMembers(commandNames, ["Door", "Opened", "Shut"])
    const containerNames = schemaNames(
      ContainerApi.make({ name: "doors", machine: DoorMachine, codec: EventCodec.make(DoorEvent) }).api
    )
    assertNoEncodedName(containerNames)
    assert.includeMembers(containerNames, ["Opened", "Shut"])
  })
})

describe("OpenAPI id, title and version", () => {
  it("ContainerApi: the user's id, title and version", () => {
    const tasks = ContainerApi.make({
      name: "tasks",
      machine: TaskMachine,
      codec: EventCodec.make(TaskEvent),
      apiId: "task-list",
      title: "Task list",
      version: "3.1.4"
    })
    const id: "task-list" = tasks.api.identifier
    assert.strictEqual(id, "task-list")
    assert.deepStrictEqual(OpenApi.fromApi(tasks.api).info, { title: "Task list", version: "3.1.4" })
  })

  it("by default: the id evently, the version of @evently/http", () => {
    const tasks = ContainerApi.make({ name: "tasks", machine: TaskMachine, codec: EventCodec.make(TaskEvent) })
    assert.strictEqual(tasks.api.identifier, "evently")
    assert.strictEqual(OpenApi.fromApi(tasks.api).info.version, packageVersion)
    assert.strictEqual(OpenApi.fromApi(CommandApi.make(bank).api).info.version, packageVersion)
    assert.notStrictEqual(packageVersion, "0.0.1", "effect's own default is not taken for ours")
  })

  it("CommandApi: the user's id, title and version", () => {
    const accounts = CommandApi.make({ ...bank, apiId: "bank", title: "Bank", version: "1.0.0" })
    assert.strictEqual(accounts.api.identifier, "bank")
    assert.deepStrictEqual(OpenApi.fromApi(accounts.api).info, { title: "Bank", version: "1.0.0" })
  })
})
