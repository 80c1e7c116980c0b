/**
 * The app of the pack test (`scripts/test/Pack.test.ts`): copied into a scratch project outside the workspace, where
 * `@evently/*` are installed from their packed tarballs and effect, @effect/sql-pg and PGlite from the registry. It
 * is typechecked there against the published `.d.ts` and run by plain `node` on the built JavaScript.
 *
 * On the embedded PGlite: an append and a typed read through a codec, a command through the command handler (and
 * one the machine refuses), and a subscription that handles every event. It prints one `ok` line per check.
 */
import { Accumulate, Graph, Machine, Rule } from "@evently/machine"
import { PgliteClient } from "@evently/pglite"
import { PgEventStore, PgSchema, PgSubscriptions } from "@evently/postgres"
import { CommandHandler, EventCodec, EventStore, ExpectedVersion, Subscriptions } from "@evently/store"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"

const Event = Schema.TaggedUnion({
  Opened: { owner: Schema.String },
  Deposited: { amount: Schema.Number },
  Closed: {}
})
type Event = typeof Event.Type

const Account = Machine.make(Event, {
  Opened: { follows: Rule.nothing() },
  Deposited: { follows: Rule.anyOf("Opened", "Deposited"), accumulate: Accumulate.current() },
  Closed: { follows: Rule.anyOf("Opened", "Deposited") }
})
type State = Machine.StateOf<typeof Account>

const Command = Schema.TaggedUnion({ Deposit: { amount: Schema.Number }, Close: {} })
type Command = typeof Command.Type

const decide = (command: Command, _state: State): Result.Result<ReadonlyArray<Event>, never> =>
  command._tag === "Deposit"
    ? Result.succeed([Event.cases.Deposited.make({ amount: command.amount })])
    : Result.succeed([Event.cases.Closed.make({})])

const codec = EventCodec.make(Event)

const check = (condition: boolean, what: string) =>
  condition ? Effect.sync(() => console.log(`ok ${what}`)) : Effect.die(new Error(`failed: ${what}`))

const program = Effect.gen(function* () {
  yield* PgSchema.migrate
  const store = EventCodec.typed(yield* EventStore.EventStore, codec)

  // An append and a typed read.
  const appended = yield* store.append("account-1", [Event.cases.Opened.make({ owner: "ada" })], {
    expected: ExpectedVersion.NoStream
  })
  yield* check(appended.version === 1, "append")
  const read = yield* Stream.runCollect(store.readStream("account-1"))
  const first: Event | undefined = read[0]?.event
  yield* check(first?._tag === "Opened" && first.owner === "ada", "typed read")

  // Commands through the command handler: one accepted, one refused by the machine.
  const accounts = yield* CommandHandler.make({ decider: Machine.decider(Account, decide), codec })
  const handled = yield* accounts.handle("account-1", Command.cases.Deposit.make({ amount: 5 }))
  const state: State = handled.state
  yield* check(handled.version === 2 && state.tags.join() === "Deposited" && state.eventCount === 2, "command")
  yield* accounts.handle("account-1", Command.cases.Close.make({}))
  const refused = yield* Effect.flip(accounts.handle("account-1", Command.cases.Deposit.make({ amount: 1 })))
  yield* check(refused._tag === "IllegalTransition", `refused command: ${refused.message}`)

  // A subscription that handles every event.
  const seen: Array<string> = []
  const subscriptions = yield* Subscriptions.Subscriptions
  yield* Effect.forkScoped(
    subscriptions.run(
      "pack-test",
      (recorded) => Effect.map(codec.decode(recorded), (event) => void seen.push(`${recorded.stream}:${event._tag}`)),
      { categories: ["account"] }
    )
  )
  yield* subscriptions.waitUntilCaughtUp("pack-test", { timeout: "30 seconds" })
  yield* check(seen.join() === "account-1:Opened,account-1:Deposited,account-1:Closed", `subscription: ${seen}`)

  yield* check(Graph.toMermaid(Account).includes("Deposited"), "graph")
})

// Modules under internal/ are not exported.
const hidden = await import(["@evently/store", "internal", "uuid"].join("/")).then(
  () => "exported",
  (error: { readonly code?: string }) => error.code
)
if (hidden !== "ERR_PACKAGE_PATH_NOT_EXPORTED") throw new Error(`@evently/store/internal/uuid: ${hidden}`)
console.log("ok internal modules are not exported")

const Stores = Layer.mergeAll(PgEventStore.layer(), PgSubscriptions.layer()).pipe(
  Layer.provideMerge(PgliteClient.layer())
)
await Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(Stores)))
console.log("done")
