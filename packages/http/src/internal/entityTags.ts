/**
 * `If-Match` / `If-None-Match` as the container resources read them: `*`, or a list of version entity tags (`"3"`,
 * or a weak `W/"3"`). Anything else is malformed: these resources have no other entity tags.
 */

/** One version entity tag of a list. */
export interface VersionTag {
  readonly version: number
  readonly weak: boolean
}

/** `*`, or the version tags a header lists. */
export type EntityTags = "*" | ReadonlyArray<VersionTag>

const versionTag = /^(W\/)?"(\d+)"$/

/**
 * The entity tags a header names, or `undefined` when it is not `*` nor a comma-separated list of at least one
 * version tag (`"abc"`, `abc`, `3`, an empty header). Empty list elements are allowed, as in every HTTP list.
 */
export const parse = (header: string): EntityTags | undefined => {
  if (header.trim() === "*") return "*"
  const tags: Array<VersionTag> = []
  for (const part of header.split(",")) {
    const element = part.trim()
    if (element === "") continue
    const match = versionTag.exec(element)
    if (match === null) return undefined
    tags.push({ version: Number(match[2]), weak: match[1] !== undefined })
  }
  return tags.length === 0 ? undefined : tags
}
