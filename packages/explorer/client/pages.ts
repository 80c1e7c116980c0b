/**
 * The explorer's pages. Each renders into the main element and may return a function that stops what it keeps
 * running (the tail's event source, the subscriptions' refresh).
 */
import * as Api from "./api.ts"
import { lagChart } from "./chart.ts"
import { diagram } from "./diagram.ts"
import { folded, h, link, replace, table } from "./dom.ts"
import type * as M from "./models.ts"

/** A page: renders into `main`, returns what stops it. */
export type Page = (params: URLSearchParams, info: M.Info, main: HTMLElement) => Promise<void | (() => void)>

const eventColumns = ["position", "stream", "version", "type", "recorded", "data", "metadata"]

const eventRow = (e: M.EventView) => [
  e.position,
  link(e.stream, "stream", { name: e.stream }),
  e.version,
  h("code", {}, e.type),
  e.recordedAt,
  folded(e.data),
  folded(e.metadata)
]

const events = (items: ReadonlyArray<M.EventView>, id: string) =>
  table(eventColumns, items, eventRow, { class: "events", id })

export const categories: Page = async (_params, _info, main) => {
  const { items } = await Api.get<{ readonly items: ReadonlyArray<M.Category> }>("categories")
  replace(
    main,
    h("h1", {}, "Categories"),
    items.length === 0
      ? h("p", {}, "No events yet.")
      : table(
          ["category", "streams", "events"],
          items,
          (c) => [link(c.category, "category", { name: c.category }), c.streams, c.events],
          { id: "categories" }
        )
  )
}

export const category: Page = async (params, _info, main) => {
  const name = params.get("name") ?? ""
  const after = params.get("after") ?? undefined
  const page = await Api.get<M.Page<M.StreamRow>>("streams", { category: name, after })
  const last = page.items[page.items.length - 1]
  replace(
    main,
    h("h1", {}, "Category ", h("code", {}, name)),
    h("p", {}, link("its events, newest first", "events", { category: name })),
    table(["stream", "events"], page.items, (r) => [link(r.stream, "stream", { name: r.stream }), r.version], {
      id: "streams"
    }),
    h(
      "nav",
      { class: "pager" },
      after !== undefined && link("first page", "category", { name }),
      page.more && last !== undefined && link("next page", "category", { name, after: last.stream })
    )
  )
}

export const categoryEvents: Page = async (params, _info, main) => {
  const name = params.get("category") ?? ""
  const before = params.get("before") ?? undefined
  const page = await Api.get<M.Page<M.EventView>>("categoryEvents", { category: name, before })
  const last = page.items[page.items.length - 1]
  replace(
    main,
    h("h1", {}, "Events of category ", h("code", {}, name)),
    h(
      "nav",
      { class: "pager" },
      link("its streams", "category", { name }),
      before !== undefined && link("newest", "events", { category: name }),
      page.more && last !== undefined && link("older", "events", { category: name, before: last.position })
    ),
    events(page.items, "category-events")
  )
}

export const streamPage: Page = async (params, _info, main) => {
  const name = params.get("name") ?? ""
  const order = params.get("order") === "asc" ? "asc" : "desc"
  const from = params.get("from") ?? undefined
  const page = await Api.get<M.StreamPage>("stream", { name, order, from })
  const last = page.items[page.items.length - 1]
  replace(
    main,
    h("h1", {}, "Stream ", h("code", { id: "stream-name" }, name)),
    h(
      "p",
      {},
      `${page.stream.version} events in category `,
      link(page.stream.category, "category", { name: page.stream.category }),
      page.machine !== undefined && " · ",
      page.machine !== undefined &&
        link(`its path through machine ${page.machine}`, "machine", { name: page.machine, stream: name })
    ),
    h(
      "nav",
      { class: "pager" },
      link(order === "desc" ? "oldest first" : "newest first", "stream", {
        name,
        order: order === "desc" ? "asc" : "desc"
      }),
      page.more && last !== undefined && link("next page", "stream", { name, order, from: last.version })
    ),
    events(page.items, "stream-events")
  )
}

export const search: Page = async (params, _info, main) => {
  const q = params.get("q") ?? ""
  if (q === "")
    return replace(main, h("h1", {}, "Search"), h("p", {}, "Type a stream name, an event id or a correlation id."))
  const found = await Api.get<M.Search>("search", { q })
  const nothing = found.streams.length === 0 && found.event === undefined && found.chain.length === 0
  replace(
    main,
    h("h1", {}, "Search ", h("code", {}, q)),
    nothing && h("p", { id: "nothing" }, "Nothing found."),
    found.streams.length > 0 && h("h2", {}, "Streams"),
    found.streams.length > 0 &&
      table(["stream", "events"], found.streams, (r) => [link(r.stream, "stream", { name: r.stream }), r.version], {
        id: "found-streams"
      }),
    found.event !== undefined && h("h2", {}, "Event"),
    found.event !== undefined && events([found.event], "found-event"),
    found.chain.length > 0 && h("h2", {}, `Correlation chain (${found.chain.length} events, in log order)`),
    found.chain.length > 0 && events(found.chain, "chain")
  )
}

const actionsBar = (info: M.Info, refresh: () => void) =>
  info.actions &&
  h(
    "form",
    {
      class: "token",
      onsubmit: (event: Event) => {
        event.preventDefault()
        const input = (event.target as HTMLFormElement).elements.namedItem("token") as HTMLInputElement
        Api.setToken(input.value)
        refresh()
      }
    },
    h("label", {}, "Action token ", h("input", { type: "password", name: "token", id: "token", value: Api.token() })),
    h("button", { type: "submit" }, "Use")
  )

const act = (what: "retry" | "drop", row: M.Parked, status: HTMLElement, refresh: () => void) =>
  h(
    "button",
    {
      class: what,
      onclick: () => {
        Api.post<unknown>(`parked/${what}`, { subscription: row.subscription, id: row.id }).then(
          () => {
            replace(status, `${what === "retry" ? "Retried" : "Dropped"} parked event ${row.id}.`)
            refresh()
          },
          (error: unknown) => replace(status, `Refused: ${error instanceof Error ? error.message : String(error)}`)
        )
      }
    },
    what
  )

const rebuildButtons = (info: M.Info, status: HTMLElement, refresh: () => void) =>
  info.actions &&
  info.projections.length > 0 &&
  h(
    "p",
    { class: "rebuilds" },
    "Rebuild from the beginning (blue/green): ",
    ...info.projections.map((name) =>
      h(
        "button",
        {
          class: "rebuild",
          onclick: () => {
            Api.post<unknown>("rebuild", { projection: name }).then(
              () => {
                replace(status, `Rebuilding ${name}: its new build shows below until it takes over.`)
                refresh()
              },
              (error: unknown) => replace(status, `Refused: ${error instanceof Error ? error.message : String(error)}`)
            )
          }
        },
        name
      )
    )
  )

export const subscriptions: Page = async (_params, info, main) => {
  const status = h("p", { id: "action-status", role: "status" })
  const body = h("div")
  const render = async () => {
    const report = await Api.get<M.Status>("subscriptions")
    const names = [...new Set(report.partitions.filter((p) => p.parked > 0).map((p) => p.subscription))]
    const parked = await Promise.all(
      names.map((name) => Api.get<{ readonly items: ReadonlyArray<M.Parked> }>("parked", { subscription: name }))
    )
    const rows = parked.flatMap((p) => p.items)
    replace(
      body,
      table(
        ["subscription", "partition", "checkpoint", "lag (events)", "lag (s)", "parked", "worker", "projection"],
        report.partitions,
        (p) => [
          p.subscription,
          `${p.partition + 1}/${p.partitions}`,
          p.checkpoint.position,
          p.lagEvents,
          p.lagSeconds.toFixed(1),
          p.parked,
          p.worker === undefined
            ? "none"
            : `pid ${p.worker.pid} ${p.worker.applicationName} ${p.worker.clientAddress ?? ""}`,
          p.projection === undefined ? "" : `${p.projection.name} v${p.projection.version} (${p.projection.state})`
        ],
        { id: "partitions" }
      ),
      report.xminHolder !== undefined &&
        h(
          "p",
          { class: "warning" },
          `Transaction of pid ${report.xminHolder.pid} holds back ${report.xminHolder.heldEvents} events: `,
          h("code", {}, report.xminHolder.query)
        ),
      h("h2", {}, "Lag"),
      lagChart(report.history),
      h("h2", {}, "Parked events"),
      rows.length === 0
        ? h("p", {}, "None.")
        : table(
            ["id", "subscription", "stream", "position", "type", "error", "parked at", ""],
            rows,
            (r) => [
              r.id,
              r.subscription,
              link(r.stream, "stream", { name: r.stream }),
              r.position,
              h("code", {}, r.type),
              h("pre", { class: "error" }, r.error),
              r.parkedAt,
              info.actions && h("span", {}, act("retry", r, status, refresh), " ", act("drop", r, status, refresh))
            ],
            { id: "parked" }
          )
    )
  }
  const refresh = () => {
    render().catch((error: unknown) => replace(body, h("p", { class: "error" }, String(error))))
  }
  replace(
    main,
    h("h1", {}, "Subscriptions and projections"),
    actionsBar(info, refresh),
    rebuildButtons(info, status, refresh),
    status,
    body
  )
  await render()
  // The next refresh is 2 s after the last one answered, never on a fixed beat: on a long log the report takes
  // seconds, and a fixed interval would pile up requests, each counting every partition's lag again.
  let timer: ReturnType<typeof setTimeout> | undefined
  let stopped = false
  const next = () => {
    timer = setTimeout(() => {
      render()
        .catch((error: unknown) => replace(body, h("p", { class: "error" }, String(error))))
        .finally(() => {
          if (!stopped) next()
        })
    }, 2000)
  }
  next()
  return () => {
    stopped = true
    clearTimeout(timer)
  }
}

export const machinePage: Page = async (params, info, main) => {
  const name = params.get("name") ?? info.machines[0] ?? ""
  const stream = params.get("stream") ?? undefined
  if (name === "") return replace(main, h("h1", {}, "Machines"), h("p", {}, "The server was given no machines."))
  const view = await Api.get<M.MachineView>("machine", { name, stream })
  replace(
    main,
    h("h1", {}, "Machine ", h("code", {}, name)),
    h("nav", { class: "pager" }, ...info.machines.map((m) => link(m, "machine", { name: m }))),
    h(
      "form",
      { class: "inline", method: "get", action: "#" },
      h("label", {}, "Stream ", h("input", { name: "stream", id: "machine-stream", value: stream ?? "" })),
      h(
        "button",
        {
          type: "button",
          onclick: () => {
            const value = (document.getElementById("machine-stream") as HTMLInputElement).value
            location.hash = `#/machine?${new URLSearchParams({ name, stream: value }).toString()}`
          }
        },
        "Show its path"
      )
    ),
    view.path !== undefined &&
      h(
        "p",
        { id: "path-summary" },
        "Now in ",
        h(
          "code",
          { id: "current-state" },
          view.graph.states.find((n) => n.key === view.path!.current)?.tags.join(", ") || "(empty)"
        ),
        "; allowed next: ",
        view.path.allowed.length === 0 ? "nothing" : view.path.allowed.join(", "),
        view.path.unmatched !== undefined &&
          ` (stopped at version ${view.path.unmatched.version}: no ${view.path.unmatched.type} from there)`
      ),
    h("div", { class: "scroll" }, diagram(view))
  )
}

export const tail: Page = async (_params, _info, main) => {
  const list = h("tbody", { id: "tail-rows" })
  const state = h("p", { id: "tail-state" }, "connecting…")
  replace(
    main,
    h("h1", {}, "Live tail"),
    state,
    h(
      "table",
      { class: "events", id: "tail" },
      h("thead", {}, h("tr", {}, ...eventColumns.map((c) => h("th", {}, c)))),
      list
    )
  )
  const source = new EventSource(Api.tailUrl())
  source.addEventListener("open", () => replace(state, "live"))
  source.addEventListener("error", () => replace(state, "reconnecting…"))
  source.addEventListener("message", (message: MessageEvent<string>) => {
    const e = JSON.parse(message.data) as M.EventView
    list.prepend(h("tr", {}, ...eventRow(e).map((cell) => h("td", {}, cell))))
    while (list.children.length > 500) list.lastElementChild!.remove()
  })
  source.addEventListener("unreadable", (message) => {
    list.prepend(
      h(
        "tr",
        { class: "unreadable" },
        h("td", { colspan: 7 }, `unreadable row: ${(message as MessageEvent<string>).data}`)
      )
    )
  })
  return () => source.close()
}
