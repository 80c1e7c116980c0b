import { assert, layer } from "@effect/vitest"
import { PgEventStore, PgSchema, PgSnapshots } from "@evently/postgres"
import { CommandHandler, EventCodec, EventStore } from "@evently/store"
import { CommandHandlerSuite, TestDatabase } from "@evently/testing"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SqlClient from "effect/sql/SqlClient"
import * as Stream from "effect/Stream"

const migrated = Layer.provideMerge(PgSchema.layerMigrate, TestDatabase.layer({ maxConnections: 8 }))

CommandHandlerSuite.suite(
  "Postgres",
  Layer.merge(PgEventStore.layer(), PgSnapshots.layer).pipe(Layer.provide(migrated), Layer.orDie)
)

const Added = Schema.TaggedUnion({ Added: { item: Schema.String } })
type Added = typeof Added.Type
const listHandler = CommandHandler.make({
  decider: {
    initial: [] as ReadonlyArray<string>,
    evolve: (items: ReadonlyArray<string>, event: Added) => [...items, event.item],
    decide: (item: string, _items: ReadonlyArray<string>) => Result.succeed([Added.cases.Added.make({ item })])
  },
  codec: EventCodec.make(Added)
})

layer(Layer.provideMerge(PgEventStore.layer(), migrated).pipe(Layer.orDie), { excludeTestServices: true })(
  "CommandHandler in a caller's transaction",
  (it) => {
    it.effect(
      "a command in the caller's transaction takes its turn alone: its rollback takes no command queued beside it",
      () =>
        Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          const store = yield* EventStore.EventStore
          // The stream's first append holds its turn until released.
          const held = yield* Deferred.make<void>()
          const release = yield* Deferred.make<void>()
          let appends = 0
          const holding = EventStore.EventStore.of({
            ...store,
            append: (stream, events, options) =>
              Effect.suspend(() =>
                ++appends === 1
                  ? Effect.andThen(Deferred.succeed(held, undefined), Deferred.await(release))
                  : Effect.void
              ).pipe(Effect.andThen(store.append(stream, events, options)))
          })
          const lists = yield* Effect.provideService(listHandler, EventStore.EventStore, holding)
          const stream = `list-${crypto.randomUUID().slice(0, 8)}`
          const first = yield* Effect.forkChild(lists.handle(stream, "first"))
          yield* Deferred.await(held)
          // In a transaction that rolls back: it reaches the handler (and waits for the turn) before `outside` does.
          const entered = yield* Deferred.make<void>()
          const inTransaction = yield* Effect.forkChild(
            Effect.exit(
              sql.withTransaction(
                Deferred.succeed(entered, undefined).pipe(
                  Effect.andThen(lists.handle(stream, "in-transaction")),
                  Effect.andThen(Effect.fail("rolled back" as const))
                )
              )
            )
          )
          yield* Deferred.await(entered)
          const outside = yield* Effect.forkChild(lists.handle(stream, "outside"), { startImmediately: true })
          yield* Deferred.succeed(release, undefined)
          yield* Fiber.join(first)
          const rolledBack = yield* Fiber.join(inTransaction)
          const handled = yield* Fiber.join(outside)
          assert.isTrue(Exit.isFailure(rolledBack))
          // What `outside` was told is what is stored: its event, and nothing of the rolled-back command.
          const stored = [...(yield* Stream.runCollect(store.readStream(stream)))].map(
            (event) => (event.data as { readonly item: string }).item
          )
          assert.deepStrictEqual(stored, ["first", "outside"])
          assert.deepStrictEqual(handled.positions.length, 1)
          assert.strictEqual(handled.version, 2)
        })
    )
  }
)
