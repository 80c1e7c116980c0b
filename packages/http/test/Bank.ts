/**
 * The bank account of issue 19: a decider that refuses an overdraft and closing an account with money in it, served
 * over HTTP through `CommandApi`.
 */
import { Machine, Rule } from "@evently/machine"
import { CommandHandler, EventCodec } from "@evently/store"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"

const Amount = Schema.Int.check(Schema.isGreaterThan(0))

export const AccountEvent = Schema.TaggedUnion({
  Opened: { owner: Schema.String },
  Deposited: { amount: Amount },
  Withdrawn: { amount: Amount },
  Closed: {}
})
export type AccountEvent = typeof AccountEvent.Type

export const AccountCommand = Schema.TaggedUnion({
  Open: { owner: Schema.String },
  Deposit: { amount: Amount },
  Withdraw: { amount: Amount },
  Close: {}
})
export type AccountCommand = typeof AccountCommand.Type

export const AccountState = Schema.Struct({
  status: Schema.Literals(["new", "open", "closed"]),
  owner: Schema.String,
  balance: Schema.Int
}).annotate({ identifier: "Account" })
export type AccountState = typeof AccountState.Type

export class Overdrawn extends Schema.TaggedError<Overdrawn>("@evently/http/test/Overdrawn")("Overdrawn", {
  balance: Schema.Int,
  amount: Schema.Int
}) {
  override get message() {
    return `A withdrawal of ${this.amount} exceeds the balance of ${this.balance}`
  }
}

export class BalanceNotZero extends Schema.TaggedError<BalanceNotZero>("@evently/http/test/BalanceNotZero")(
  "BalanceNotZero",
  { balance: Schema.Int }
) {}

export class NotOpen extends Schema.TaggedError<NotOpen>("@evently/http/test/NotOpen")("NotOpen", {
  status: Schema.String,
  owner: Schema.String
}) {}

export type AccountError = Overdrawn | BalanceNotZero | NotOpen

const initial: AccountState = { status: "new", owner: "", balance: 0 }

const evolve = (state: AccountState, event: AccountEvent): AccountState => {
  switch (event._tag) {
    case "Opened":
      return { status: "open", owner: event.owner, balance: 0 }
    case "Deposited":
      return { ...state, balance: state.balance + event.amount }
    case "Withdrawn":
      return { ...state, balance: state.balance - event.amount }
    case "Closed":
      return { ...state, status: "closed" }
  }
}

const decide = (
  command: AccountCommand,
  state: AccountState
): Result.Result<ReadonlyArray<AccountEvent>, AccountError> => {
  if (command._tag === "Open") {
    return state.status === "new"
      ? Result.succeed([AccountEvent.cases.Opened.make({ owner: command.owner })])
      : Result.fail(new NotOpen({ status: state.status, owner: state.owner }))
  }
  if (state.status !== "open") return Result.fail(new NotOpen({ status: state.status, owner: state.owner }))
  switch (command._tag) {
    case "Deposit":
      return Result.succeed([AccountEvent.cases.Deposited.make({ amount: command.amount })])
    case "Withdraw":
      return command.amount > state.balance
        ? Result.fail(new Overdrawn({ balance: state.balance, amount: command.amount }))
        : Result.succeed([AccountEvent.cases.Withdrawn.make({ amount: command.amount })])
    case "Close":
      return state.balance === 0
        ? Result.succeed([AccountEvent.cases.Closed.make({})])
        : Result.fail(new BalanceNotZero({ balance: state.balance }))
  }
}

/** The accounts' command handler, as a service; its retry policy lets 20 racing withdrawals all be decided. */
export class Accounts extends CommandHandler.Service<Accounts>()("@evently/http/test/Accounts", {
  decider: { initial, evolve, decide },
  codec: EventCodec.make(AccountEvent),
  retry: Schedule.spaced("2 millis").pipe(Schedule.jittered, Schedule.upTo({ times: 200 }))
}) {}

const whileOpen = Rule.anyOf(Rule.event("Opened"), Rule.event("Deposited"), Rule.event("Withdrawn"))

/** The life cycle of an account as a machine: what raw events, when turned on, are checked against. */
export const AccountMachine = Machine.make(AccountEvent, {
  Opened: { follows: Rule.nothing() },
  Deposited: { follows: whileOpen },
  Withdrawn: { follows: whileOpen },
  Closed: { follows: whileOpen }
})
