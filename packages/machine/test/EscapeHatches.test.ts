import { assert, describe, it } from "@effect/vitest"
import { Accumulate, Arbitraries, Graph, Machine, Rule } from "@evently/machine"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"

const { nothing, event, allOf, butNot, anyOf, predicate } = Rule
const { union, custom } = Accumulate

// A proposal is accepted once two of its three reviews approve it (a quorum, which `allOf`/`anyOf` could spell out only
// case by case), and a flag can be raised and lowered by one event type (a toggle, which no fixed accumulation does).
const Proposal = Schema.TaggedUnion({
  Drafted: { title: Schema.String },
  LegalApproved: {},
  FinanceApproved: {},
  TechApproved: {},
  Accepted: {},
  Flagged: {},
  Flag: {}
})
type ProposalTag = (typeof Proposal.Type)["_tag"]
const reviews = ["LegalApproved", "FinanceApproved", "TechApproved"] as const
const review = (tag: (typeof reviews)[number]) => ({
  follows: allOf("Drafted", butNot(tag), butNot("Accepted")),
  accumulate: union()
})

const proposals = Machine.make(Proposal, {
  Drafted: { follows: nothing() },
  LegalApproved: review("LegalApproved"),
  FinanceApproved: review("FinanceApproved"),
  TechApproved: review("TechApproved"),
  Accepted: { follows: predicate("quorum", (tags) => reviews.filter((tag) => tags.has(tag)).length >= 2) },
  Flagged: {
    follows: anyOf("Drafted", "Accepted"),
    accumulate: custom("toggle Flag", (tags) =>
      tags.has("Flag") ? [...tags].filter((tag) => tag !== "Flag") : [...tags, "Flag"]
    )
  },
  Flag: { follows: predicate<ProposalTag>("never", () => false) }
})

const { Drafted, LegalApproved, TechApproved, Accepted, Flagged } = Proposal.cases
const drafted = Drafted.make({ title: "Lunch budget" })

describe("escape hatches: a named predicate rule and a named custom accumulation", () => {
  it("a predicate is evaluated on the control state, and a refusal names it", () => {
    const one = Result.getOrThrow(proposals.fold([drafted, LegalApproved.make({})]))
    const refused = proposals.transition(one, Accepted.make({}))
    assert.isTrue(Result.isFailure(refused))
    if (Result.isFailure(refused) && refused.failure._tag === "IllegalTransition") {
      assert.strictEqual(refused.failure.rule, 'predicate("quorum")')
      assert.strictEqual(
        refused.failure.message,
        `Event type 'Accepted' may not follow [Drafted, LegalApproved] (it follows predicate("quorum"))`
      )
    }
    const two = Result.getOrThrow(proposals.fold([drafted, LegalApproved.make({}), TechApproved.make({})]))
    assert.include(proposals.allowed(two), "Accepted")
    assert.deepStrictEqual(Result.getOrThrow(proposals.transition(two, Accepted.make({}))).tags, ["Accepted"])
  })

  it("a custom accumulation computes the next control state", () => {
    const once = Result.getOrThrow(proposals.fold([drafted, Flagged.make({})]))
    assert.deepStrictEqual(once.tags, ["Drafted", "Flag"])
    const twice = Result.getOrThrow(proposals.fold([drafted, Flagged.make({}), Flagged.make({})]))
    assert.deepStrictEqual(twice.tags, ["Drafted"])
    assert.strictEqual(Accumulate.format(proposals.rules.Flagged.accumulate), 'custom("toggle Flag")')
  })

  it("the graph evaluates them on every reachable state, and the diagram shows their names", () => {
    const graph = Graph.make(proposals)
    const edges = Graph.edges(graph)
    assert.include(edges, "[Drafted] --Flagged--> [Drafted, Flag]")
    assert.include(edges, "[Drafted, Flag] --Flagged--> [Drafted]")
    assert.include(edges, "[Drafted, LegalApproved, TechApproved] --Accepted--> [Accepted]")
    assert.notInclude(edges, "[Drafted, LegalApproved] --Accepted--> [Accepted]")
    assert.isFalse(edges.some((edge) => edge.includes("--Flag-->")))
    const accepted = graph.transitions.find((t) => t.event === "Accepted")
    assert.deepStrictEqual(accepted?.custom, ["quorum"])
    const mermaid = Graph.toMermaid(proposals).split("\n")
    assert.isTrue(mermaid.some((line) => line.endsWith(": Accepted [quorum]")))
    assert.isTrue(mermaid.some((line) => line.endsWith(": Flagged [toggle Flag]")))
  })

  it.prop(
    "the generators walk through them: every generated history folds",
    { history: Arbitraries.validHistory(proposals) },
    ({ history }) => {
      assert.isTrue(Result.isSuccess(proposals.fold(history)))
    }
  )

  it("building refuses a custom accumulation that leads to an unknown event type", () => {
    const Light = Schema.TaggedUnion({ On: {}, Off: {} })
    // Given no type argument inside compose, the custom's tags are plain strings: the build catches the typo.
    const built = Machine.makeResult(Light, {
      On: { follows: nothing() },
      Off: {
        follows: event("On"),
        accumulate: Accumulate.compose(
          union(),
          custom("dim", () => ["Dimmed"])
        )
      }
    })
    assert.isTrue(Result.isFailure(built))
    if (Result.isFailure(built)) {
      assert.strictEqual(
        built.failure.message,
        "Invalid machine in state [On]: 'Off' leads to unknown event types 'Dimmed'"
      )
    }
  })
})
