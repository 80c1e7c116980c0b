import { assert, layer } from "@effect/vitest"
import * as ExitCode from "@evently/cli/ExitCode"
import { PgEventStore, PgSchema } from "@evently/postgres"
import { EventStore } from "@evently/store"
import { TestDatabase } from "@evently/testing"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { databaseUrl, fixtureConfig, start, until } from "./helpers.ts"

const Database = PgEventStore.layer().pipe(
  Layer.provideMerge(PgSchema.layerMigrate.pipe(Layer.orDie, Layer.provideMerge(TestDatabase.layer())))
)

layer(Database, { excludeTestServices: true })("evently explore", (it) => {
  it.effect(
    "serves the explorer on 127.0.0.1 with the config's machines and projections, read-only, until Ctrl-C",
    () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        yield* store.append("task-1", [{ type: "Created", data: { title: "explore me" } }])
        const explorer = start(yield* databaseUrl, ["--config", fixtureConfig, "explore", "--port", "0"])
        const line = yield* until(
          () => explorer.output.stdout,
          (text) => text.includes("evently explorer on "),
          "the explorer to listen"
        )
        const url = new URL(/on (\S+) /.exec(line)![1]!)
        assert.strictEqual(url.hostname, "127.0.0.1")
        assert.include(line, "read-only")
        const info = yield* Effect.promise(() => fetch(new URL("api/info", url)).then((r) => r.json()))
        assert.deepStrictEqual(info, { actions: false, machines: ["task"], projections: ["job_states"] })
        const path = yield* Effect.promise(() =>
          fetch(new URL("api/machine?name=task&stream=task-1", url)).then(
            (r) => r.json() as Promise<{ readonly path: { readonly current: string } }>
          )
        )
        assert.strictEqual(path.path.current, "[Created]")
        explorer.child.kill("SIGINT")
        const ended = yield* explorer.exit
        assert.strictEqual(ended.code, ExitCode.Interrupted, ended.stderr)
      })
  )
})
