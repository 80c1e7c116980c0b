/**
 * `pnpm build [--clean]`: every library package under packages/ to its `dist/` (ESM JavaScript, `.d.ts`, declaration
 * and source maps), with the workspace's TypeScript and the `tsconfig.build.json` of each package
 * (`tsc -b tsconfig.build.json` at the root builds them in dependency order).
 *
 * Nothing in the workspace reads `dist/`: tests, examples and scripts run on the TypeScript sources, because a
 * package's `exports` point at `src/`. Only the packed package sees `dist/`, through the `publishConfig.exports`
 * that `pnpm pack` and `pnpm publish` put in its place.
 *
 * TypeScript keeps the `.ts` extension of relative imports in the declarations it emits (it rewrites them only in
 * JavaScript), so this script rewrites `"./X.ts"` to `"./X.js"` in every emitted `.d.ts`: what a consumer's
 * TypeScript, of any version, expects to find next to a `.js` file.
 */
import { spawnSync } from "node:child_process"
import { globSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"

/** The workspace root. */
export const root = fileURLToPath(new URL("..", import.meta.url))

/** The library packages that are built and published: every folder under packages/ with a tsconfig.build.json. */
export const libraries = (workspace: string = root): ReadonlyArray<string> =>
  globSync("packages/*/tsconfig.build.json", { cwd: workspace })
    .map((file) => file.slice(0, -"/tsconfig.build.json".length))
    .sort()

const relativeTs = /((?:from|import)\s*\(?\s*["'])(\.{1,2}\/[^"']*)\.ts(["'])/g

/**
 * Builds every library of `workspace` (default: this one; the pack test builds a copy), first removing each `dist/`
 * when `clean` is set. Throws when `tsc` fails.
 */
export const build = (options: { readonly clean?: boolean; readonly workspace?: string } = {}): void => {
  const workspace = options.workspace ?? root
  const packages = libraries(workspace)
  if (options.clean) {
    for (const dir of packages) rmSync(`${workspace}/${dir}/dist`, { recursive: true, force: true })
  }
  const tsc = spawnSync(process.execPath, [`${root}/node_modules/typescript/bin/tsc`, "-b", "tsconfig.build.json"], {
    cwd: workspace,
    encoding: "utf8"
  })
  if (tsc.status !== 0) throw new Error(`tsc -b tsconfig.build.json failed:\n${tsc.stdout}${tsc.stderr}`)
  for (const dir of packages) {
    for (const file of globSync(`${dir}/dist/**/*.d.ts`, { cwd: workspace })) {
      const text = readFileSync(`${workspace}/${file}`, "utf8")
      const rewritten = text.replace(relativeTs, "$1$2.js$3")
      if (rewritten !== text) writeFileSync(`${workspace}/${file}`, rewritten)
    }
  }
}

if (import.meta.main) {
  build({ clean: process.argv.includes("--clean") })
  console.log(`built ${libraries().join(", ")}`)
}
