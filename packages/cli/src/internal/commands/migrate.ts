/**
 * `evently migrate [--dry-run]`: runs the pending migrations, or prints their SQL.
 */
import * as PgOperations from "@evently/postgres/PgOperations"
import * as PgSchema from "@evently/postgres/PgSchema"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import { Command, Flag } from "effect/cli"
import { Json, withDatabase } from "../context.ts"
import { printJson } from "../render.ts"

const dryRunFlag = Flag.Boolean("dry-run").pipe(
  Flag.withDescription("Print the SQL of the pending migrations; change nothing"),
  Flag.withDefault(false)
)

const printPlan = (plan: ReadonlyArray<PgOperations.PendingMigration>, json: boolean) => {
  if (json) return printJson({ pending: plan })
  if (plan.length === 0) return Console.log("-- the database is up to date: no migration to run")
  return Console.log(
    plan
      .map(
        (m) =>
          `-- ${String(m.id).padStart(4, "0")}_${m.name}\n${m.statements.map((s) => `${s.trim()};`).join("\n\n")}\n`
      )
      .join("\n")
  )
}

export const migrate = Command.make("migrate", { dryRun: dryRunFlag }, ({ dryRun }) =>
  withDatabase(
    Effect.gen(function* () {
      const json = yield* Json
      if (dryRun) return yield* printPlan(yield* PgOperations.pendingMigrations, json)
      const applied = yield* PgSchema.migrate
      const list = applied.map(([id, name]) => ({ id, name }))
      if (json) return yield* printJson({ applied: list })
      yield* Console.log(
        list.length === 0
          ? "The database is up to date: no migration to run"
          : list.map((m) => `applied ${String(m.id).padStart(4, "0")}_${m.name}`).join("\n")
      )
    })
  )
).pipe(
  Command.withDescription("Create or update evently's tables (the migrations PgSchema.migrate runs)"),
  Command.withExamples([
    { command: "evently migrate --dry-run", description: "Print the SQL it would run" },
    { command: "evently migrate", description: "Run the pending migrations" }
  ])
)
