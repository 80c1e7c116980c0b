/**
 * The explorer's JSON API, relative to the page (`<path>/api/...`), and the action token the operator types in
 * (kept for the tab's session only).
 */

/** An answer the API refused, with its status and reason. */
export class ApiError extends Error {
  readonly status: number
  constructor(status: number, reason: string) {
    super(reason)
    this.status = status
  }
}

const tokenKey = "evently-explorer-token"

/** The token typed in this tab, if any. */
export const token = (): string => sessionStorage.getItem(tokenKey) ?? ""

/** Keeps (or, empty, forgets) the token for this tab. */
export const setToken = (value: string): void => {
  if (value === "") sessionStorage.removeItem(tokenKey)
  else sessionStorage.setItem(tokenKey, value)
}

const url = (path: string, params: Readonly<Record<string, string | number | undefined>>): string => {
  const query = new URLSearchParams()
  for (const [name, value] of Object.entries(params)) if (value !== undefined) query.set(name, String(value))
  const text = query.toString()
  return `api/${path}${text === "" ? "" : `?${text}`}`
}

const answer = async <A>(response: Response): Promise<A> => {
  const body = (await response.json()) as A & { readonly error?: string }
  if (!response.ok) throw new ApiError(response.status, body.error ?? response.statusText)
  return body
}

/** GET `api/<path>?<params>`. */
export const get = async <A>(path: string, params: Readonly<Record<string, string | number | undefined>> = {}) =>
  answer<A>(await fetch(url(path, params), { headers: { accept: "application/json" } }))

/** POST `api/<path>?<params>` with the token. */
export const post = async <A>(path: string, params: Readonly<Record<string, string | number | undefined>> = {}) =>
  answer<A>(await fetch(url(path, params), { method: "POST", headers: { authorization: `Bearer ${token()}` } }))

/** The URL of the live tail's event source. */
export const tailUrl = (): string => url("tail", {})
