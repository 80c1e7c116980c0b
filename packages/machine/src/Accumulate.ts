/**
 * The `accumulate` grammar: how an event changes the control state (the set of event types accumulated so far).
 * Where the grammar cannot say it, `custom(name, f)` is the escape hatch: a named function of the control state and
 * the event type, evaluated like the rest and shown by its name.
 *
 * @since 0.1.0
 */

/**
 * The state becomes `{tag}`: only the event just recorded. The default.
 *
 * @since 0.1.0
 * @category models
 */
export interface Current {
  readonly _tag: "Current"
}

/**
 * The state is left as it was.
 *
 * @since 0.1.0
 * @category models
 */
export interface Keep {
  readonly _tag: "Keep"
}

/**
 * The tag is added to the state.
 *
 * @since 0.1.0
 * @category models
 */
export interface Union {
  readonly _tag: "Union"
}

/**
 * The state becomes `{alias}`, as if the aliased event had been recorded.
 *
 * @since 0.1.0
 * @category models
 */
export interface Alias<out Tag extends string> {
  readonly _tag: "Alias"
  readonly tag: Tag
}

/**
 * The named tags are added to the state (the event's own tag is not).
 *
 * @since 0.1.0
 * @category models
 */
export interface Addition<out Tag extends string> {
  readonly _tag: "Addition"
  readonly tags: ReadonlyArray<Tag>
}

/**
 * The named tags are removed from the state (the event's own tag is not added).
 *
 * @since 0.1.0
 * @category models
 */
export interface Difference<out Tag extends string> {
  readonly _tag: "Difference"
  readonly tags: ReadonlyArray<Tag>
}

/**
 * The accumulations applied one after the other, left to right.
 *
 * @since 0.1.0
 * @category models
 */
export interface Compose<out Tag extends string> {
  readonly _tag: "Compose"
  readonly steps: ReadonlyArray<Accumulate<Tag>>
}

/**
 * A named function from the control state and the event type to the next control state, for accumulations the
 * grammar cannot say. It must be pure: the graph and the generators evaluate it on every state they visit.
 *
 * @since 0.1.0
 * @category models
 */
export interface Custom<Tag extends string> {
  readonly _tag: "Custom"
  readonly name: string
  apply(tags: ReadonlySet<Tag>, eventType: Tag): Iterable<Tag>
}

/**
 * An `accumulate` rule over the event types `Tag`.
 *
 * @since 0.1.0
 * @category models
 */
export type Accumulate<Tag extends string> =
  | Current
  | Keep
  | Union
  | Alias<Tag>
  | Addition<Tag>
  | Difference<Tag>
  | Compose<Tag>
  | Custom<Tag>

/**
 * The tags named by an accumulation (or a union of them). It does not distribute over the cases of `Accumulate`, so
 * the tag-less ones (`current()`, `keep()`, `union()`) add nothing instead of widening the result to `string`; a
 * custom accumulation names none (its type parameter only types its function).
 *
 * @since 0.1.0
 * @category type-level
 */
export type TagsOf<A> = [Exclude<A, Custom<string>>] extends [Accumulate<infer T>] ? T : never

/**
 * `current()`: the state becomes `{tag}` (the default).
 *
 * @since 0.1.0
 * @category constructors
 */
export const current = (): Accumulate<never> => ({ _tag: "Current" })

/**
 * `keep()`: the state is unchanged.
 *
 * @since 0.1.0
 * @category constructors
 */
export const keep = (): Accumulate<never> => ({ _tag: "Keep" })

/**
 * `union()`: the state gains the tag.
 *
 * @since 0.1.0
 * @category constructors
 */
export const union = (): Accumulate<never> => ({ _tag: "Union" })

/**
 * `alias("X")`: the state becomes `{X}`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const alias = <const Tag extends string>(tag: Tag): Accumulate<Tag> => ({ _tag: "Alias", tag })

/**
 * `addition("X", …)`: the state gains the named tags, not the event's own.
 *
 * @since 0.1.0
 * @category constructors
 */
export const addition = <const Tags extends ReadonlyArray<string>>(...tags: Tags): Accumulate<Tags[number]> => ({
  _tag: "Addition",
  tags
})

/**
 * `difference("X", …)`: the state loses the named tags; the event's own is not added.
 *
 * @since 0.1.0
 * @category constructors
 */
export const difference = <const Tags extends ReadonlyArray<string>>(...tags: Tags): Accumulate<Tags[number]> => ({
  _tag: "Difference",
  tags
})

/**
 * `compose(a, b, …)`: applies `a`, then `b` to its result, and so on.
 *
 * @since 0.1.0
 * @category constructors
 */
export const compose = <const Steps extends ReadonlyArray<Accumulate<string>>>(
  ...steps: Steps
): Accumulate<TagsOf<Steps[number]>> => ({
  _tag: "Compose",
  steps: steps as ReadonlyArray<Accumulate<TagsOf<Steps[number]>>>
})

/**
 * `custom(name, f)`: the state becomes `f(state, eventType)`, the escape hatch for an accumulation the grammar cannot
 * say (microcosm-eventsource accepts any function as `accumulate`). The name shows in `format` and in diagrams.
 * Written directly as an `accumulate`, its tags are the machine's event types (returning an unknown tag does not
 * compile); defined apart or nested in `compose`, give them as the type argument:
 * `custom<TaskTag>("reopen", (tags) => [...tags, "Created"])`. Building the machine still refuses one that leads to
 * an unknown event type.
 *
 * @since 0.1.0
 * @category constructors
 */
export const custom = <Tag extends string = string>(
  name: string,
  f: (tags: ReadonlySet<Tag>, eventType: Tag) => Iterable<Tag>
): Custom<Tag> => ({ _tag: "Custom", name, apply: f })

/**
 * Applies an accumulation for an event of type `tag` to a control state.
 *
 * @since 0.1.0
 * @category evaluation
 */
export const apply = <Tag extends string>(
  accumulate: Accumulate<Tag>,
  tag: string,
  tags: ReadonlySet<string>
): ReadonlySet<string> => {
  switch (accumulate._tag) {
    case "Current":
      return new Set([tag])
    case "Keep":
      return tags
    case "Union":
      return new Set([...tags, tag])
    case "Alias":
      return new Set([accumulate.tag])
    case "Addition":
      return new Set([...tags, ...accumulate.tags])
    case "Difference": {
      const next = new Set(tags)
      for (const t of accumulate.tags) next.delete(t)
      return next
    }
    case "Compose":
      return accumulate.steps.reduce<ReadonlySet<string>>((acc, step) => apply(step, tag, acc), tags)
    case "Custom":
      return new Set(accumulate.apply(tags as ReadonlySet<Tag>, tag as Tag))
  }
}

/**
 * The names of the custom accumulations in an accumulation, in the order they are written.
 *
 * @since 0.1.0
 * @category evaluation
 */
export const customNames = <Tag extends string>(accumulate: Accumulate<Tag>): ReadonlyArray<string> => {
  switch (accumulate._tag) {
    case "Compose":
      return accumulate.steps.flatMap(customNames)
    case "Custom":
      return [accumulate.name]
    default:
      return []
  }
}

/**
 * Renders an accumulation as it would be written in code, e.g. `alias("Created")`.
 *
 * @since 0.1.0
 * @category rendering
 */
export const format = <Tag extends string>(accumulate: Accumulate<Tag>): string => {
  switch (accumulate._tag) {
    case "Current":
      return "current()"
    case "Keep":
      return "keep()"
    case "Union":
      return "union()"
    case "Alias":
      return `alias("${accumulate.tag}")`
    case "Addition":
      return `addition(${accumulate.tags.map((t) => `"${t}"`).join(", ")})`
    case "Difference":
      return `difference(${accumulate.tags.map((t) => `"${t}"`).join(", ")})`
    case "Compose":
      return `compose(${accumulate.steps.map(format).join(", ")})`
    case "Custom":
      return `custom("${accumulate.name}")`
  }
}
