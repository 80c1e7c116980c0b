/**
 * A cat's events, how they fold into the cat, and what the updater appends next.
 */
import { EventCodec } from "@evently/store"
import * as Schema from "effect/Schema"

/** Everything that can happen to a cat. */
export const CatEvent = Schema.Union([
  Schema.TaggedStruct("Adopted", { name: Schema.String }),
  Schema.TaggedStruct("Fed", { food: Schema.String }),
  Schema.TaggedStruct("Napped", { minutes: Schema.Int }),
  Schema.TaggedStruct("Renamed", { name: Schema.String })
])

/** One of a cat's events. */
export type CatEvent = typeof CatEvent.Type

/** Stores a cat's events as plain JSON, one `event_type` per tag. */
export const codec = EventCodec.make(CatEvent)

/** A cat, as its events have made it. */
export interface Cat {
  readonly name: string | undefined
  readonly meals: ReadonlyArray<string>
  readonly napMinutes: number
}

/** A cat nobody has adopted yet. */
export const initial: Cat = { name: undefined, meals: [], napMinutes: 0 }

/** Applies one event to a cat. */
export const evolve = (cat: Cat, event: CatEvent): Cat => {
  switch (event._tag) {
    case "Adopted":
    case "Renamed":
      return { ...cat, name: event.name }
    case "Fed":
      return { ...cat, meals: [...cat.meals, event.food] }
    case "Napped":
      return { ...cat, napMinutes: cat.napMinutes + event.minutes }
  }
}

/** The stream of the cat called `name`: `cat-<name>`. */
export const streamOf = (name: string): string => `cat-${name}`

const foods = ["tuna", "chicken", "salmon", "kibble"] as const

/** What the updater appends to a cat at `version`: adoption first, then meals and naps in turn. */
export const next = (name: string, version: number): CatEvent =>
  version === 0
    ? { _tag: "Adopted", name }
    : version % 2 === 1
      ? { _tag: "Fed", food: foods[Math.floor(version / 2) % foods.length]! }
      : { _tag: "Napped", minutes: 10 + 5 * (version % 7) }

/** One line about a cat. */
export const describe = (cat: Cat): string =>
  cat.name === undefined
    ? "not adopted yet"
    : `${cat.name}, ${cat.meals.length} meal(s)${cat.meals.length > 0 ? ` (last: ${cat.meals.at(-1)})` : ""}, ` +
      `${cat.napMinutes} minute(s) of naps`

/** What the updater says when another writer got there first. */
export const conflictMessage = (stream: string, loaded: number, actual: number): string =>
  `Conflict: ${stream} was at version ${loaded} when you loaded it, but it is now at version ${actual} — reload and try again`
