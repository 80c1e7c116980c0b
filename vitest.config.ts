import { existsSync, globSync, readFileSync } from "node:fs"
import { defineConfig } from "vitest/config"
import projects from "./vitest.workspace.ts"

// Each folder the workspace list matches (and that is a package) is one project. `extends: true` gives every
// project the options below, which a bare glob entry would not.
const roots = projects
  .flatMap((pattern) => globSync(pattern))
  .filter((dir) => existsSync(`${dir}/package.json`))
  .sort()

export default defineConfig({
  test: {
    projects: roots.map((root) => ({
      extends: true,
      root,
      test: { name: (JSON.parse(readFileSync(`${root}/package.json`, "utf8")) as { name: string }).name }
    })),
    // Tests talk to a real Postgres and spawn processes on a 2-core machine: a slow run is not a failure. Speed is
    // measured by `pnpm bench`, never asserted by a timeout.
    testTimeout: 60_000,
    hookTimeout: 60_000
  }
})
