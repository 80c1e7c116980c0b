/**
 * The `follows` grammar: which earlier events an event type may follow. A rule is a predicate on the control state
 * (the set of event types accumulated so far) and on nothing else, as in microcosm-eventsource: `nothing()` holds on
 * an empty control state, whether no event was ever recorded or the state was emptied by `difference(...)`.
 *
 * Tags are plain strings here; a machine checks them against its event union, so a rule naming a tag that is not in
 * the union does not compile where the machine is built.
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
 * A `follows` rule over the event types `Tag`.
 *
 * @since 0.1.0
 * @category models
 */
export type Rule<Tag extends string> = Event<Tag> | Nothing | AllOf<Tag> | AnyOf<Tag> | ButNot<Tag>

/**
 * What the combinators accept: a rule, or a bare tag as shorthand for `event(tag)`.
 *
 * @since 0.1.0
 * @category models
 */
export type Input<Tag extends string = string> = Rule<Tag> | Tag

/**
 * The tags named by a list of rule inputs.
 *
 * @since 0.1.0
 * @category type-level
 */
export type TagsOf<I extends ReadonlyArray<Input>> = {
  [K in keyof I]: I[K] extends Rule<infer T> ? T : I[K] extends string ? I[K] : never
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
  }
}

const empty: ReadonlySet<string> = new Set()

/**
 * Whether an event type with this rule is *initial*: whether the rule holds on an empty control state. This is
 * semantic, not syntactic (microcosm-eventsource looks at the rule's shape instead): `nothing()` and
 * `anyOf(nothing(), "X")` are initial, `allOf(nothing(), "X")` is not (it can never hold), and a bare `butNot("X")` is
 * initial, because in an empty state X is absent.
 *
 * @since 0.1.0
 * @category evaluation
 */
export const isInitial = <Tag extends string>(rule: Rule<Tag>): boolean => holds(rule, empty)

/**
 * Renders a rule as it would be written in code, e.g. `allOf(event("Created"), butNot(event("Assigned")))`.
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
  }
}
