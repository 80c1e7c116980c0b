/**
 * The checks every EventStore adapter runs on an append before any I/O. Pure: it returns a prepared batch or a
 * plain description of the first problem; `EventStore.prepareAppend` turns problems into the typed errors.
 */

/** Deepest nesting of arrays and objects accepted in `data` and `metadata`. */
export const maxDepth = 100

/** Largest UTF-8 size of one event's `data` plus `metadata` JSON text, in bytes. */
export const maxEventBytes = 4 * 1024 * 1024

/** Longest event type accepted, in characters. */
export const maxTypeLength = 256

const maxSchemaVersion = 2_147_483_647

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Why a string cannot be stored in Postgres text/jsonb, or undefined. */
export const stringProblem = (value: string): string | undefined => {
  if (value.includes("\u0000")) return "contains a NUL character (\\u0000), which Postgres cannot store"
  if (!value.isWellFormed()) return "contains a lone UTF-16 surrogate, which is not valid Unicode"
  return undefined
}

const describePath = (path: ReadonlyArray<string | number>): string =>
  path.length === 0
    ? "the value"
    : path.map((p) => (typeof p === "number" ? `[${p}]` : `[${JSON.stringify(p)}]`)).join("")

/**
 * Why `value` is not plain JSON that round-trips through jsonb exactly, or undefined when it is.
 */
export const jsonProblem = (value: unknown): string | undefined => {
  const ancestors = new Set<object>()
  const path: Array<string | number> = []
  const visit = (v: unknown, depth: number): string | undefined => {
    switch (typeof v) {
      case "boolean":
        return undefined
      case "number":
        return Number.isFinite(v) ? undefined : `${describePath(path)} is a non-finite number (${v})`
      case "string": {
        const problem = stringProblem(v)
        return problem === undefined ? undefined : `${describePath(path)} ${problem}`
      }
      case "undefined":
      case "function":
      case "symbol":
      case "bigint":
        return `${describePath(path)} is a ${typeof v}, which is not JSON`
    }
    if (v === null) return undefined
    const obj = v as object
    if (depth >= maxDepth) return `it is nested deeper than ${maxDepth} levels`
    if (ancestors.has(obj)) return `${describePath(path)} is a cycle back to one of its ancestors`
    ancestors.add(obj)
    const result = Array.isArray(obj) ? visitArray(obj, depth) : visitObject(obj, depth)
    ancestors.delete(obj)
    return result
  }
  const visitArray = (arr: ReadonlyArray<unknown>, depth: number): string | undefined => {
    for (let i = 0; i < arr.length; i++) {
      path.push(i)
      const problem = i in arr ? visit(arr[i], depth + 1) : `${describePath(path)} is a hole in a sparse array`
      path.pop()
      if (problem !== undefined) return problem
    }
    return undefined
  }
  const visitObject = (obj: object, depth: number): string | undefined => {
    const proto = Object.getPrototypeOf(obj)
    if (proto !== Object.prototype && proto !== null) {
      return `${describePath(path)} is not a plain object (${proto?.constructor?.name ?? "unknown"}); encode it first`
    }
    if (Object.getOwnPropertySymbols(obj).length > 0) return `${describePath(path)} has symbol keys`
    const record = obj as Record<string, unknown>
    for (const key of Object.keys(record)) {
      path.push(key)
      const keyProblem = stringProblem(key)
      const problem =
        keyProblem !== undefined ? `the key ${describePath(path)} ${keyProblem}` : visit(record[key], depth + 1)
      path.pop()
      if (problem !== undefined) return problem
    }
    return undefined
  }
  return visit(value, 0)
}

/** The UTF-8 size of a string, in bytes. */
export const utf8Length = (text: string): number => {
  let bytes = 0
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code < 0x80) bytes += 1
    else if (code < 0x800) bytes += 2
    else if (code >= 0xd800 && code <= 0xdbff) {
      bytes += 4
      i++
    } else bytes += 3
  }
  return bytes
}

/** Why `type` cannot be an event type, or undefined. */
export const typeProblem = (type: unknown): string | undefined => {
  if (typeof type !== "string") return "the type is not a string"
  if (type.length === 0) return "the type is empty"
  if (type.length > maxTypeLength) return `the type is longer than ${maxTypeLength} characters`
  const problem = stringProblem(type)
  return problem === undefined ? undefined : `the type ${problem}`
}

/** Why `version` cannot be a schema version, or undefined. */
export const schemaVersionProblem = (version: unknown): string | undefined =>
  typeof version === "number" && Number.isInteger(version) && version >= 1 && version <= maxSchemaVersion
    ? undefined
    : `the schema version ${String(version)} is not a positive 32-bit integer`

/** The event id in canonical (lower-case) form, or a problem. */
export const eventId = (id: unknown): { readonly id: string } | { readonly problem: string } =>
  typeof id === "string" && uuidPattern.test(id)
    ? { id: id.toLowerCase() }
    : { problem: `the event id ${typeof id === "string" ? JSON.stringify(id.slice(0, 60)) : String(id)} is not a UUID` }

/** Structural equality of two JSON values (key order ignored, as jsonb ignores it). */
export const jsonEquals = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (!jsonEquals(a[i], b[i])) return false
    return true
  }
  if (Array.isArray(b)) return false
  const ra = a as Record<string, unknown>
  const rb = b as Record<string, unknown>
  const ka = Object.keys(ra)
  if (ka.length !== Object.keys(rb).length) return false
  for (const key of ka) {
    if (!Object.hasOwn(rb, key) || !jsonEquals(ra[key], rb[key])) return false
  }
  return true
}
