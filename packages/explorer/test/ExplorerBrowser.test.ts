/**
 * The explorer in a real browser: Debian's Chromium driven by playwright-core, one launch for the whole file, on a
 * seeded database. Each page is visited and saved as a screenshot under `test-results/` (git-ignored) for a
 * reviewer to look at.
 */
import { EventStore } from "@evently/store"
import { assert, layer } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { spawnSync } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { chromium, type Page } from "playwright-core"
import * as Explorer from "../src/Explorer.ts"
import * as Seed from "./seed.ts"

const executablePath = "/usr/bin/chromium"
const token = "browser-test-token"
const packageDir = fileURLToPath(new URL("..", import.meta.url))
const screenshots = join(packageDir, "test-results")

// The page's scripts, as the package build makes them (a test run needs no earlier build).
const buildClient = () => {
  const tsc = fileURLToPath(new URL("../../../node_modules/typescript/bin/tsc", import.meta.url))
  const result = spawnSync(process.execPath, [tsc, "-p", join(packageDir, "client/tsconfig.json")], {
    encoding: "utf8"
  })
  if (result.status !== 0) throw new Error(`Building the explorer's page failed:\n${result.stdout}${result.stderr}`)
}

class Browser extends Context.Service<Browser, { readonly page: Page; readonly url: URL }>()("test/Browser") {}

const BrowserLive = Layer.effect(
  Browser,
  Effect.gen(function* () {
    if (!existsSync(executablePath)) {
      return yield* Effect.die(
        new Error(`No Chromium at ${executablePath}: install it with 'apt-get install -y chromium' (as .ci/run does)`)
      )
    }
    buildClient()
    mkdirSync(screenshots, { recursive: true })
    const url = yield* Explorer.serve({
      port: 0,
      token,
      machines: Seed.machines,
      projections: { task_titles: Seed.TaskTitles }
    })
    const profile = mkdtempSync(join(tmpdir(), "evently-explorer-chromium-"))
    const context = yield* Effect.acquireRelease(
      Effect.promise(() =>
        chromium.launchPersistentContext(profile, {
          executablePath,
          headless: true,
          args: [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync"
          ],
          viewport: { width: 1280, height: 800 }
        })
      ),
      (launched) =>
        Effect.promise(async () => {
          await launched.close()
          rmSync(profile, { recursive: true, force: true })
        })
    )
    const page = context.pages()[0] ?? (yield* Effect.promise(() => context.newPage()))
    const errors: Array<string> = []
    page.on("pageerror", (error) => errors.push(error.message))
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        if (errors.length > 0) console.error(`Errors in the page: ${errors.join("\n")}`)
      })
    )
    return { page, url }
  })
).pipe(Layer.provideMerge(Seed.layer))

const visit = (hash: string) =>
  Effect.gen(function* () {
    const { page, url } = yield* Browser
    yield* Effect.promise(() => page.goto(new URL(hash, url).href))
    yield* Effect.promise(() => page.waitForSelector("body[data-ready]"))
    return page
  })

const shot = (page: Page, name: string) =>
  Effect.promise(() => page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: true }))

const promise = <A>(f: () => Promise<A>) => Effect.promise(f)

layer(BrowserLive, { excludeTestServices: true, timeout: 60_000 })("the explorer in Chromium", (it) => {
  it.effect("follows a stream from the category list and shows its events", () =>
    Effect.gen(function* () {
      const page = yield* visit("#/")
      yield* shot(page, "categories")
      const rows = yield* promise(() => page.locator("#categories tbody tr").allTextContents())
      assert.include(rows, "task25")
      yield* promise(() => page.click("#categories >> text=task"))
      yield* promise(() => page.waitForSelector("#streams"))
      yield* shot(page, "category")
      yield* promise(() => page.click("text=its events, newest first"))
      yield* promise(() => page.waitForSelector("#category-events"))
      yield* shot(page, "category-events")
      const categoryTypes = yield* promise(() =>
        page.locator("#category-events tbody tr td:nth-child(4)").allTextContents()
      )
      assert.deepStrictEqual(categoryTypes, ["Created", "Started", "Paused", "Started", "Created"])
      yield* promise(() => page.click("text=its streams"))
      yield* promise(() => page.waitForSelector("#streams"))
      yield* promise(() => page.click("#streams >> text=task-1"))
      yield* promise(() => page.waitForSelector("#stream-events"))
      yield* shot(page, "stream")
      const types = yield* promise(() => page.locator("#stream-events tbody tr td:nth-child(4)").allTextContents())
      assert.deepStrictEqual(types, ["Started", "Paused", "Started", "Created"])
    })
  )

  it.effect("renders event data and errors that look like markup as text", () =>
    Effect.gen(function* () {
      const page = yield* visit("#/stream?name=evil-1")
      yield* promise(() => page.waitForSelector("#stream-events"))
      yield* promise(() => page.click("#stream-events details >> nth=0"))
      yield* shot(page, "escaping")
      const text = yield* promise(() => page.locator("#stream-events").textContent())
      assert.include(text, JSON.stringify(Seed.hostile.script))
      assert.include(text, JSON.stringify(Seed.hostile.attribute))
      assert.include(text, JSON.stringify(Seed.hostile.closing))
      const parked = yield* visit("#/subscriptions")
      yield* promise(() => parked.waitForSelector("#parked"))
      assert.include(yield* promise(() => parked.locator("#parked").textContent()), Seed.hostile.script)
      const injected = yield* promise(() =>
        // A string: this file is typechecked without the DOM's types; it runs in the page.
        page.evaluate(`({
          pwned: window.__pwned ?? null,
          images: document.querySelectorAll("main img").length,
          bold: document.getElementById("injected") !== null,
          scripts: document.querySelectorAll("main script").length
        })`)
      )
      assert.deepStrictEqual(injected, { pwned: null, images: 0, bold: false, scripts: 0 })
    })
  )

  it.effect("shows a correlation id's chain across streams, in order", () =>
    Effect.gen(function* () {
      const page = yield* visit("#/")
      yield* promise(() => page.fill("#search", Seed.correlationId))
      yield* promise(() => page.press("#search", "Enter"))
      yield* promise(() => page.waitForSelector("#chain"))
      yield* shot(page, "search")
      const streams = yield* promise(() => page.locator("#chain tbody tr td:nth-child(2)").allTextContents())
      assert.deepStrictEqual(streams, ["order-1", "payment-1", "order-1"])
    })
  )

  it.effect("draws the machine with the stream's current state and the events allowed next", () =>
    Effect.gen(function* () {
      const page = yield* visit("#/machine?name=task&stream=task-1")
      yield* promise(() => page.waitForSelector("svg.diagram"))
      yield* shot(page, "machine")
      const current = yield* promise(() => page.locator("svg.diagram .state.current").getAttribute("data-state"))
      assert.strictEqual(current, "[Started]")
      const allowed = yield* promise(() => page.locator("svg.diagram .edge.allowed").count())
      assert.strictEqual(allowed, 2)
      assert.include(yield* promise(() => page.locator("#path-summary").textContent()), "Paused, Completed")
    })
  )

  it.effect("shows a new event in the live tail after an append", () =>
    Effect.gen(function* () {
      const page = yield* visit("#/tail")
      yield* promise(() => page.waitForSelector("#tail-state >> text=live"))
      const store = yield* EventStore.EventStore
      yield* store.append("task-live", [{ type: "Created", data: { title: "appended while watching" } }])
      yield* promise(() => page.waitForSelector("#tail-rows >> text=task-live"))
      yield* shot(page, "tail")
    })
  )

  it.effect("refreshes the subscriptions only after the previous report answered, never piling requests up", () =>
    Effect.gen(function* () {
      const { page } = yield* Browser
      let requests = 0
      const arrivals = [Promise.withResolvers<void>(), Promise.withResolvers<void>(), Promise.withResolvers<void>()]
      const release = Promise.withResolvers<void>()
      // The first refresh (the second request) is held unanswered, as a slow report on a long log would be.
      yield* promise(() =>
        page.route("**/api/subscriptions", async (route) => {
          requests++
          arrivals[requests - 1]?.resolve()
          if (requests === 2) await release.promise
          await route.continue()
        })
      )
      yield* visit("#/subscriptions")
      yield* promise(() => page.waitForSelector("#partitions"))
      yield* promise(() => arrivals[1]!.promise)
      // A refresh period and a half while the second request is held: a fixed interval would have sent a third.
      yield* promise(() => page.waitForTimeout(3000))
      assert.strictEqual(requests, 2)
      release.resolve()
      yield* promise(() => arrivals[2]!.promise)
      yield* promise(() => page.unroute("**/api/subscriptions"))
      yield* visit("#/")
    })
  )

  it.effect("refuses to retry a parked event without the token, retries it with the token, starts a rebuild", () =>
    Effect.gen(function* () {
      const page = yield* visit("#/subscriptions")
      yield* promise(() => page.waitForSelector("#parked button.retry"))
      yield* shot(page, "subscriptions")
      yield* promise(() => page.click("#parked button.retry"))
      yield* promise(() => page.waitForSelector("#action-status >> text=Refused"))
      yield* promise(() => page.fill("#token", token))
      yield* promise(() => page.click("form.token button"))
      yield* promise(() => page.waitForSelector("#parked button.retry"))
      yield* promise(() => page.click("#parked button.retry"))
      yield* promise(() => page.waitForSelector("#action-status >> text=Retried"))
      yield* promise(() => page.waitForSelector("#parked", { state: "detached" }))
      yield* promise(() => page.click("button.rebuild"))
      yield* promise(() => page.waitForSelector("#action-status >> text=Rebuilding task_titles"))
      yield* promise(() => page.waitForSelector("#partitions >> text=task_titles v1 (active)"))
      yield* shot(page, "rebuilt")
    })
  )
})
