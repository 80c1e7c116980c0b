/**
 * The explorer's single page: a header with the pages and the search box, and the page the location's hash names
 * (`#/stream?name=...`), rendered again when the hash changes.
 */
import * as Api from "./api.ts"
import { h, href, replace } from "./dom.ts"
import type * as M from "./models.ts"
import * as Pages from "./pages.ts"

const routes: Readonly<Record<string, Pages.Page>> = {
  "": Pages.categories,
  category: Pages.category,
  events: Pages.categoryEvents,
  stream: Pages.streamPage,
  search: Pages.search,
  subscriptions: Pages.subscriptions,
  machine: Pages.machinePage,
  tail: Pages.tail
}

const header = (info: M.Info) =>
  h(
    "header",
    {},
    h("a", { href: href(""), class: "brand" }, "evently explorer"),
    h(
      "nav",
      {},
      h("a", { href: href("") }, "Categories"),
      h("a", { href: href("subscriptions") }, "Subscriptions"),
      info.machines.length > 0 && h("a", { href: href("machine") }, "Machines"),
      h("a", { href: href("tail") }, "Live tail")
    ),
    h(
      "form",
      {
        class: "search",
        onsubmit: (event: Event) => {
          event.preventDefault()
          const input = document.getElementById("search") as HTMLInputElement
          location.hash = href("search", { q: input.value.trim() })
        }
      },
      h("input", {
        id: "search",
        type: "search",
        placeholder: "stream, event id or correlation id",
        "aria-label": "Search"
      }),
      h("button", { type: "submit" }, "Search")
    ),
    h("span", { class: info.actions ? "mode actions" : "mode" }, info.actions ? "actions enabled" : "read-only")
  )

const start = async () => {
  const info = await Api.get<M.Info>("info")
  const main = h("main", { id: "main" })
  replace(document.body, header(info), main)
  let stop: void | (() => void)
  const show = async () => {
    if (typeof stop === "function") stop()
    stop = undefined
    const [path = "", query = ""] = location.hash.replace(/^#\/?/, "").split("?")
    const page = routes[path]
    if (page === undefined) return replace(main, h("h1", {}, "No such page"), h("p", {}, path))
    replace(main, h("p", { class: "loading" }, "loading…"))
    try {
      stop = await page(new URLSearchParams(query), info, main)
    } catch (error) {
      replace(
        main,
        h("h1", {}, "Could not load this page"),
        h("p", { class: "error", id: "page-error" }, error instanceof Error ? error.message : String(error))
      )
    }
  }
  window.addEventListener("hashchange", () => void show())
  await show()
  document.body.setAttribute("data-ready", "")
}

void start()
