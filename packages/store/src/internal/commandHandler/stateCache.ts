/**
 * The states a command handler last loaded or wrote, per stream, most recently used last (a `Map` keeps insertion
 * order, so the first key is the one to evict). A state never replaces a newer one.
 */

/** A bounded cache of states by stream. */
export interface StateCache<Key, Value extends { readonly stream: Key; readonly version: number }> {
  readonly get: (key: Key) => Value | undefined
  readonly set: (value: Value) => void
  readonly delete: (key: Key) => void
}

/** A cache of at most `capacity` states (0: none kept). */
export const make = <Key, Value extends { readonly stream: Key; readonly version: number }>(
  capacity: number
): StateCache<Key, Value> => {
  const cache = new Map<Key, Value>()
  return {
    get: (key) => {
      const entry = cache.get(key)
      if (entry !== undefined) {
        cache.delete(key)
        cache.set(key, entry)
      }
      return entry
    },
    set: (value) => {
      if (capacity === 0) return
      const current = cache.get(value.stream)
      if (current !== undefined && current.version > value.version) return
      cache.delete(value.stream)
      cache.set(value.stream, value)
      if (cache.size > capacity) cache.delete(cache.keys().next().value!)
    },
    delete: (key) => {
      cache.delete(key)
    }
  }
}
