/**
 * The `follows` grammar: which earlier events an event type may follow. A rule is a predicate on the control state
 * (the set of event types accumulated so far) and on nothing else, as in microcosm-eventsource: `nothing()` holds on
 * an empty control state, whether no event was ever recorded or the state was emptied by `difference(...)`.
 *
 * Tags are plain strings here; a machine checks them against its event union, so a rule naming a tag that is not in
 * the union does not compile where the machine is built. Where the grammar cannot say a rule, `predicate(name, test)`
 * is the escape hatch: a named test of the control state, evaluated like the rest and shown by its name.
 *
 * @since 0.1.0
 */

/**
 * Holds when the event type `tag` is in the control state.
 *
 * @since 0.1.0
 * @category models
 */
export interface Event<out Tag extends string> {
  readonly _tag: "Event"
  readonly tag: Tag
}

/**
 * Holds on an empty control state: no event yet, or every tag removed by `difference(...)`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Nothing {
  readonly _tag: "Nothing"
}

/**
 * Holds when every one of its rules holds.
 *
 * @since 0.1.0
 * @category models
 */
export interface AllOf<out Tag extends string> {
  readonly _tag: "AllOf"
  readonly rules: ReadonlyArray<Rule<Tag>>
}

/**
 * Holds when at least one of its rules holds.
 *
 * @since 0.1.0
 * @category models
 */
export interface AnyOf<out Tag extends string> {
  readonly _tag: "AnyOf"
  readonly rules: ReadonlyArray<Rule<Tag>>
}

/**
 * Holds when its rule does not.
 *
 * @since 0.1.0
 * @category models
 */
export interface ButNot<out Tag extends string> {
  readonly _tag: "ButNot"
  readonly rule: Rule<Tag>
}

/**
 * A named test of the control state, for rules the grammar cannot say. It must be pure: it sees only the tags, and
 * the graph, the generators and the checks evaluate it on every state they visit (it is evaluated, not analysed).
 *
 * @since 0.1.0
 * @category models
 */
export interface Predicate<Tag extends string> {
  readonly _tag: "Predicate"
  readonly name: string
  test(tags: ReadonlySet<Tag>): boolean
}

/**
 * A `follows` rule over the event types `Tag`.
 *
 * @since 0.1.0
 * @category models
 */
export type Rule<Tag extends string> = Event<Tag> | Nothing | AllOf<Tag> | AnyOf<Tag> | ButNot<Tag> | Predicate<Tag>

/**
 * What the combinators accept: a rule, or a bare tag as shorthand for `event(tag)`.
 *
 * @since 0.1.0
 * @category models
 */
export type Input<Tag extends string = string> = Rule<Tag> | Tag

/**
 * The tags named by a list of rule inputs. A predicate names none: its type parameter only types its test.
 *
 * @since 0.1.0
 * @category type-level
 */
export type TagsOf<I extends ReadonlyArray<Input>> = {
  [K in keyof I]: I[K] extends Predicate<string>
    ? never
    : I[K] extends Rule<infer T>
      ? T
      : I[K] extends string
        ? I[K]
        : never
}[number]

const normalize = <Tag extends string>(input: Input<Tag>): Rule<Tag> =>
  typeof input === "string" ? event(input) : input

/**
 * `event("X")` holds when X is in the control state.
 *
 * @since 0.1.0
 * @category constructors
 */
export const event = <const Tag extends string>(tag: Tag): Rule<Tag> => ({ _tag: "Event", tag })

/**
 * `nothing()` holds on an empty control state; an event type that follows nothing is initial.
 *
 * @since 0.1.0
 * @category constructors
 */
export const nothing = (): Rule<never> => ({ _tag: "Nothing" })

/**
 * `allOf(a, b, …)` holds when every rule holds (bare tags mean `event(tag)`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const allOf = <const I extends ReadonlyArray<Input>>(...rules: I): Rule<TagsOf<I>> => ({
  _tag: "AllOf",
  rules: rules.map(normalize) as ReadonlyArray<Rule<TagsOf<I>>>
})

/**
 * `anyOf(a, b, …)` holds when at least one rule holds (bare tags mean `event(tag)`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const anyOf = <const I extends ReadonlyArray<Input>>(...rules: I): Rule<TagsOf<I>> => ({
  _tag: "AnyOf",
  rules: rules.map(normalize) as ReadonlyArray<Rule<TagsOf<I>>>
})

/**
 * `butNot(a)` holds when `a` does not (a bare tag means `event(tag)`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const butNot = <const I extends Input>(rule: I): Rule<TagsOf<readonly [I]>> => ({
  _tag: "ButNot",
  rule: normalize(rule) as Rule<TagsOf<readonly [I]>>
})

/**
 * `predicate(name, test)` holds when `test` returns true for the control state: the escape hatch for a rule the
 * grammar cannot say (microcosm-eventsource accepts any callable as `follows`). The name shows in `format`, in
 * refusals and in diagrams. Written directly as a `follows`, its tags are the machine's event types (a typo in
 * `tags.has("...")` does not compile); nested in `allOf`/`anyOf`/`butNot` or defined apart, they are plain strings
 * unless given as the type argument: `predicate<TaskTag>("busy", (tags) => tags.has("Started"))`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const predicate = <Tag extends string = string>(
  name: string,
  test: (tags: ReadonlySet<Tag>) => boolean
): Predicate<Tag> => ({ _tag: "Predicate", name, test })

/**
 * Evaluates a rule against a control state.
 *
 * @since 0.1.0
 * @category evaluation
 */
export const holds = <Tag extends string>(rule: Rule<Tag>, tags: ReadonlySet<string>): boolean => {
  switch (rule._tag) {
    case "Event":
      return tags.has(rule.tag)
    case "Nothing":
      return tags.size === 0
    case "AllOf":
      return rule.rules.every((r) => holds(r, tags))
    case "AnyOf":
      return rule.rules.some((r) => holds(r, tags))
    case "ButNot":
      return !holds(rule.rule, tags)
    case "Predicate":
      return rule.test(tags as ReadonlySet<Tag>)
  }
}

const empty: ReadonlySet<string> = new Set()

/**
 * Whether an event type with this rule is *initial*: whether the rule holds on an empty control state. This is
 * semantic, not syntactic (microcosm-eventsource looks at the rule's shape instead): `nothing()` and
 * `anyOf(nothing(), "X")` are initial, `allOf(nothing(), "X")` is not (it can never hold), and a bare `butNot("X")` is
 * initial, because in an empty state X is absent. A predicate is asked.
 *
 * @since 0.1.0
 * @category evaluation
 */
export const isInitial = <Tag extends string>(rule: Rule<Tag>): boolean => holds(rule, empty)

/**
 * The names of the predicates in a rule, in the order they are written.
 *
 * @since 0.1.0
 * @category evaluation
 */
export const predicateNames = <Tag extends string>(rule: Rule<Tag>): ReadonlyArray<string> => {
  switch (rule._tag) {
    case "Event":
    case "Nothing":
      return []
    case "AllOf":
    case "AnyOf":
      return rule.rules.flatMap(predicateNames)
    case "ButNot":
      return predicateNames(rule.rule)
    case "Predicate":
      return [rule.name]
  }
}

/**
 * Renders a rule as it would be written in code, e.g. `allOf(event("Created"), butNot(event("Assigned")))`; a
 * predicate shows as its name, `predicate("withinHours")`.
 *
 * @since 0.1.0
 * @category rendering
 */
export const format = <Tag extends string>(rule: Rule<Tag>): string => {
  switch (rule._tag) {
    case "Event":
      return `event("${rule.tag}")`
    case "Nothing":
      return "nothing()"
    case "AllOf":
      return `allOf(${rule.rules.map(format).join(", ")})`
    case "AnyOf":
      return `anyOf(${rule.rules.map(format).join(", ")})`
    case "ButNot":
      return `butNot(${format(rule.rule)})`
    case "Predicate":
      return `predicate("${rule.name}")`
  }
}
