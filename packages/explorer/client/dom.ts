/**
 * Building the document without markup: every element is made with `createElement`, every piece of text (event
 * data, stream names, errors: user input) is a text node, and attributes are set one by one, never an event handler
 * attribute. Nothing here parses HTML, so no data can become markup.
 */

/** What an element may contain: elements, text, or nothing. */
export type Child = Node | string | number | null | undefined | false

/** Attributes of an element: strings set with `setAttribute` (never `on*`), and `on` handlers. */
export interface Attributes {
  readonly [name: string]: string | number | boolean | undefined | ((event: Event) => void)
}

const append = (parent: Element, children: ReadonlyArray<Child>): void => {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue
    parent.append(
      typeof child === "string" || typeof child === "number" ? document.createTextNode(String(child)) : child
    )
  }
}

const apply = (element: Element, attributes: Attributes): void => {
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue
    if (typeof value === "function") {
      if (!name.startsWith("on")) throw new Error(`A handler must be named on<event>, not ${name}`)
      element.addEventListener(name.slice(2).toLowerCase(), value)
      continue
    }
    if (name.toLowerCase().startsWith("on")) throw new Error(`Refusing to set the attribute ${name}`)
    element.setAttribute(name, value === true ? "" : String(value))
  }
}

/** An HTML element. */
export const h = <K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: ReadonlyArray<Child>
): HTMLElementTagNameMap[K] => {
  const element = document.createElement(tag)
  apply(element, attributes)
  append(element, children)
  return element
}

/** An SVG element. */
export const s = (tag: string, attributes: Attributes = {}, ...children: ReadonlyArray<Child>): SVGElement => {
  const element = document.createElementNS("http://www.w3.org/2000/svg", tag)
  apply(element, attributes)
  append(element, children)
  return element as SVGElement
}

/** A link to a page of the explorer: `#/<page>?<params>`, each parameter encoded. */
export const href = (page: string, params: Readonly<Record<string, string | number | undefined>> = {}): string => {
  const query = new URLSearchParams()
  for (const [name, value] of Object.entries(params)) if (value !== undefined) query.set(name, String(value))
  const text = query.toString()
  return `#/${page}${text === "" ? "" : `?${text}`}`
}

/** A link to a page of the explorer, with text. */
export const link = (text: string, page: string, params: Readonly<Record<string, string | number | undefined>> = {}) =>
  h("a", { href: href(page, params) }, text)

const preview = (value: unknown): string => {
  const text = JSON.stringify(value) ?? String(value)
  return text.length > 80 ? `${text.slice(0, 79)}…` : text
}

/** JSON folded: a one-line preview that opens to the indented document, both as text. */
export const folded = (value: unknown, className = "json"): HTMLElement =>
  h(
    "details",
    { class: className },
    h("summary", {}, preview(value)),
    h("pre", {}, JSON.stringify(value, null, 2) ?? String(value))
  )

/** A table with a header row and a row per item. */
export const table = <A>(
  columns: ReadonlyArray<string>,
  items: ReadonlyArray<A>,
  row: (item: A) => ReadonlyArray<Child>,
  attributes: Attributes = {}
): HTMLTableElement =>
  h(
    "table",
    attributes,
    h("thead", {}, h("tr", {}, ...columns.map((c) => h("th", {}, c)))),
    h("tbody", {}, ...items.map((item) => h("tr", {}, ...row(item).map((cell) => h("td", {}, cell)))))
  )

/** Replaces the children of `parent`. */
export const replace = (parent: Element, ...children: ReadonlyArray<Child>): void => {
  parent.replaceChildren()
  append(parent, children)
}
