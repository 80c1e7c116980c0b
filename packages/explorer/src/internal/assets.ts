/**
 * The page's static files: `index.html` and `explorer.css` from the package's `static/` folder, and the page's
 * JavaScript modules, compiled by the package build from `client/` into `dist/client/`. Both folders are found next
 * to the package's `src/` and `dist/`, so the same paths serve the workspace and the published package. Only file
 * names of letters, digits, `-` and `_` with a known extension are served, never a path.
 */
import * as Effect from "effect/Effect"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import { readFile } from "node:fs/promises"
import { fileURLToPath } from "node:url"
import { baseHeaders } from "./respond.ts"

const staticDir = fileURLToPath(new URL("../../static/", import.meta.url))
const clientDir = fileURLToPath(new URL("../../dist/client/", import.meta.url))

const types: Record<string, string> = {
  html: "text/html; charset=utf-8",
  css: "text/css; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  svg: "image/svg+xml"
}

/**
 * What the page may load: its own scripts, styles and API, nothing inline and nothing from elsewhere. Even if event
 * data reached the DOM as markup, a script in it would not run.
 */
export const contentSecurityPolicy =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

const pageHeaders = { ...baseHeaders, "content-security-policy": contentSecurityPolicy }

const notFound = (what: string) =>
  HttpServerResponse.text(`${what}\n`, { status: 404, contentType: "text/plain; charset=utf-8", headers: pageHeaders })

// A path segment as text: a malformed escape (`%E0%A4%A`) is no file name, not a failure of the server.
const decoded = (segment: string): string => {
  try {
    return decodeURIComponent(segment)
  } catch {
    return segment
  }
}

/** The file named by the URL path segment `segment` (`index.html`, `explorer.css`, `app.js`…), or 404. */
export const serve = (segment: string): Effect.Effect<HttpServerResponse.HttpServerResponse> => {
  const name = decoded(segment)
  const match = /^([A-Za-z0-9_-]{1,64})\.(html|css|js|svg)$/.exec(name)
  if (match === null) return Effect.succeed(notFound(`No asset '${name}'`))
  const extension = match[2]!
  const file = `${extension === "js" ? clientDir : staticDir}${name}`
  return Effect.promise(() =>
    readFile(file).then(
      (bytes) => bytes,
      () => undefined
    )
  ).pipe(
    Effect.map((bytes) =>
      bytes === undefined
        ? notFound(
            extension === "js"
              ? `No asset '${name}': the page's scripts are built into dist/client by the package build (pnpm build)`
              : `No asset '${name}'`
          )
        : HttpServerResponse.uint8Array(bytes, { contentType: types[extension]!, headers: pageHeaders })
    )
  )
}
