/**
 * The packages as a user installs them. Builds every library (`pnpm build`, in a copy of the workspace's libraries
 * under a temporary folder), packs each with `pnpm pack`, installs the
 * tarballs and their peers (effect, @effect/sql-pg, PGlite, from the registry) with plain `npm` into a scratch project
 * outside the workspace, typechecks an app and every public module there with `tsc` (strict, `nodenext`, library
 * checks on) against the published `.d.ts`, and runs the app with plain `node` on the built JavaScript, with type
 * stripping off: an append, a typed read, commands through the command handler and a subscription, on PGlite.
 *
 * It fails when a published declaration points into `src/`, into `internal/` or at a `.ts` file, when a manifest
 * keeps a `workspace:` or `catalog:` range, or when installing `@evently/testing` brings vitest.
 *
 * npm's cache (~/.npm) makes later runs fast; a first run downloads about 60 MB.
 */
import { spawnSync, type SpawnSyncOptions } from "node:child_process"
import {
  copyFileSync,
  cpSync,
  existsSync,
  globSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, describe, it } from "vitest"
import { build, libraries, root } from "../build.ts"

/** What the test reads of a package.json. */
interface Manifest {
  readonly name: string
  readonly version: string
  readonly private?: boolean
  readonly sideEffects?: unknown
  readonly engines?: { readonly node?: string }
  readonly exports?: Record<string, { readonly types?: string; readonly default?: string } | string | null>
  readonly packageManager?: string
}

const readJson = (file: string): Manifest => JSON.parse(readFileSync(file, "utf8")) as Manifest

/** The workspace's version of a dependency, from the catalog in pnpm-workspace.yaml. */
const catalog = (name: string): string => {
  const text = readFileSync(join(root, "pnpm-workspace.yaml"), "utf8")
  const line = text.split("\n").find((l) => l.trim().replace(/"/g, "").startsWith(`${name}:`))
  if (line === undefined) throw new Error(`${name} is not in the catalog`)
  return line.split(":").slice(1).join(":").trim()
}

/** The environment of a child process, without what pnpm puts in its scripts' (npm_config_*, npm_package_*…). */
const cleanEnv = (): NodeJS.ProcessEnv =>
  Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(npm_|pnpm_|PNPM_)/i.test(key)))

const run = (command: string, args: ReadonlyArray<string>, options: SpawnSyncOptions): string => {
  const result = spawnSync(command, args, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, ...options })
  const output = `${result.stdout ?? ""}${result.stderr ?? ""}`
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(" ")} exited with ${result.status ?? result.signal}:\n${output}`)
  }
  return output
}

/** pnpm as the workspace runs it: the one running `pnpm test`, or the pinned one through npx. */
const pnpm = (args: ReadonlyArray<string>, options: SpawnSyncOptions): string => {
  const execPath = process.env.npm_execpath
  if (execPath !== undefined && /pnpm/.test(execPath)) return run(process.execPath, [execPath, ...args], options)
  const pinned = (readJson(join(root, "package.json")).packageManager ?? "pnpm@10").split("+")[0]!
  return run("npx", ["-y", pinned, ...args], options)
}

const inDist = (path: string | undefined): boolean => path?.startsWith("./dist/") === true

/** The module specifiers a declaration file imports or re-exports. */
const specifiers = (text: string): ReadonlyArray<string> =>
  [...text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)["']([^"']+)["']|reference\s+path=["']([^"']+)["']/g)].map(
    (m) => (m[1] ?? m[2])!
  )

const scratch = mkdtempSync(join(tmpdir(), "evently-pack-"))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

describe("the published packages", () => {
  it("install from their tarballs, typecheck and run an app outside the workspace", () => {
    const timings: Array<string> = []
    const timed = <A>(what: string, f: () => A): A => {
      const start = performance.now()
      const result = f()
      timings.push(`${what} ${((performance.now() - start) / 1000).toFixed(1)}s`)
      return result
    }

    // Every package under packages/ is a library: built, packed and installed below.
    const all = globSync("packages/*/package.json", { cwd: root }).map((file) => file.slice(0, -"/package.json".length))
    assert.deepStrictEqual(
      [...all].sort(),
      [...libraries()],
      "every package under packages/ has a tsconfig.build.json (see packages/store's)"
    )

    // A copy of the libraries (sources, manifests, build configs, and their node_modules links as they are), built
    // and packed there: nothing is written into the work tree, and test runs side by side do not meet.
    const workspace = join(scratch, "workspace")
    timed("copy", () => {
      mkdirSync(join(workspace, "packages"), { recursive: true })
      for (const file of ["package.json", "pnpm-workspace.yaml", "tsconfig.base.json", "tsconfig.build.json"]) {
        copyFileSync(join(root, file), join(workspace, file))
      }
      symlinkSync(join(root, "node_modules"), join(workspace, "node_modules"))
      for (const dir of libraries()) {
        for (const entry of readdirSync(join(root, dir))) {
          if (["dist", ".tsbuild", "test"].includes(entry)) continue
          cpSync(join(root, dir, entry), join(workspace, dir, entry), { recursive: true, verbatimSymlinks: true })
        }
      }
    })
    timed("build", () => build({ clean: true, workspace }))

    const tarballs = join(scratch, "tarballs")
    mkdirSync(tarballs)
    timed("pack", () =>
      pnpm(["-r", "--filter", "./packages/*", "pack", "--pack-destination", tarballs], {
        cwd: workspace,
        env: cleanEnv()
      })
    )
    const packages = libraries(workspace).map((dir) => readJson(join(workspace, dir, "package.json")))
    const tarballOf = new Map(
      packages.map((p) => [p.name, join(tarballs, `${p.name.replace("@", "").replace("/", "-")}-${p.version}.tgz`)])
    )
    for (const [name, file] of tarballOf) assert.isTrue(existsSync(file), `${name} was packed to ${file}`)

    const app = join(scratch, "app")
    mkdirSync(app)
    writeFileSync(
      join(app, "package.json"),
      JSON.stringify(
        {
          name: "evently-pack-test",
          private: true,
          type: "module",
          dependencies: {
            ...Object.fromEntries([...tarballOf].map(([name, file]) => [name, `file:${file}`])),
            "@effect/sql-pg": catalog("@effect/sql-pg"),
            "@electric-sql/pglite": catalog("@electric-sql/pglite"),
            effect: catalog("effect")
          },
          // PGlite's declarations use the Emscripten types without depending on them: with library checks on, an app
          // needs them (its own devDependencies list them).
          devDependencies: { "@types/emscripten": "1.41.6", "@types/node": catalog("@types/node") }
        },
        null,
        2
      )
    )
    timed("npm install", () =>
      run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"], {
        cwd: app,
        env: cleanEnv()
      })
    )

    // What was installed: the manifests as published, no vitest, declarations that stay inside dist/.
    assert.isFalse(existsSync(join(app, "node_modules/vitest")), "@evently/testing does not bring vitest")
    const problems: Array<string> = []
    const publicModules: Array<string> = []
    for (const { name } of packages) {
      const dir = join(app, "node_modules", name)
      const manifest = readJson(join(dir, "package.json"))
      const text = JSON.stringify(manifest)
      if (/"(workspace|catalog):/.test(text)) problems.push(`${name}: package.json keeps a workspace or catalog range`)
      if (manifest.private === true) problems.push(`${name}: private`)
      if (manifest.sideEffects !== false) problems.push(`${name}: sideEffects is not false`)
      if (manifest.engines?.node === undefined) problems.push(`${name}: no engines.node`)
      if (manifest.exports?.["./internal/*"] !== null) problems.push(`${name}: internal/ is exported`)
      for (const key of [".", "./*"]) {
        const target = manifest.exports?.[key]
        if (typeof target !== "object" || target === null || !inDist(target.types) || !inDist(target.default)) {
          problems.push(`${name}: exports["${key}"] is not { types, default } in dist/`)
        }
      }
      for (const file of ["README.md", "LICENSE"]) {
        if (!existsSync(join(dir, file))) problems.push(`${name}: no ${file}`)
      }
      if (globSync("{test,dist/**/*.tsbuildinfo,dist/.tsbuildinfo}", { cwd: dir }).length > 0) {
        problems.push(`${name}: the tarball carries tests or build info`)
      }
      for (const file of globSync("dist/**/*.d.ts", { cwd: dir })) {
        const isInternal = file.startsWith("dist/internal/")
        for (const specifier of specifiers(readFileSync(join(dir, file), "utf8"))) {
          const where = `${name}/${file} imports "${specifier}"`
          if (/(^|\/)src(\/|$)/.test(specifier)) problems.push(`${where}: into src/`)
          if (/\.(c|m)?tsx?$/.test(specifier) && !/\.d\.(c|m)?ts$/.test(specifier))
            problems.push(`${where}: a .ts file`)
          if (/^@evently\/[^/]+\/internal(\/|$)/.test(specifier)) problems.push(`${where}: another package's internal/`)
          if (!isInternal && /^\.{1,2}\/(.*\/)?internal\//.test(specifier)) {
            problems.push(`${where}: a public declaration points into internal/`)
          }
        }
        const module = file.slice("dist/".length, -".d.ts".length)
        if (isInternal) continue
        // The modules of @evently/testing that build vitest suites need vitest, an optional peer not installed here.
        if (/["']vitest["']|["']@effect\/vitest["']/.test(readFileSync(join(dir, file), "utf8"))) continue
        publicModules.push(module === "index" ? name : `${name}/${module}`)
      }
    }
    assert.deepStrictEqual(problems, [])

    // The app, and every public module, typechecked against the published declarations.
    copyFileSync(join(root, "scripts/pack/main.ts"), join(app, "main.ts"))
    writeFileSync(join(app, "modules.ts"), publicModules.map((m, i) => `export * as m${i} from "${m}"\n`).join(""))
    writeFileSync(
      join(app, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "es2024",
          module: "nodenext",
          moduleResolution: "nodenext",
          strict: true,
          skipLibCheck: false,
          types: ["node", "emscripten"],
          rootDir: ".",
          outDir: "dist"
        },
        files: ["main.ts", "modules.ts"]
      })
    )
    timed("tsc", () => run(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", app], { cwd: app }))

    // The app on the built JavaScript, by plain node with no type stripping.
    const output = timed("node", () =>
      run(process.execPath, ["--no-experimental-strip-types", "dist/main.js"], { cwd: app, env: cleanEnv() })
    )
    console.log(`pack test: ${timings.join(", ")}; ${publicModules.length} public modules typechecked\n${output}`)
    for (const line of [
      "ok internal modules are not exported",
      "ok append",
      "ok typed read",
      "ok command",
      "ok refused command",
      "ok subscription",
      "ok graph",
      "done"
    ]) {
      assert.include(output, line)
    }
  }, 600_000)
})
