/**
 * The user's schema names in the OpenAPI document. OpenAPI documents a schema's encoded side (what is on the wire),
 * and a `Schema.Class` or `Schema.TaggedClass` names only its type side: effect then lists its body as
 * `<Name>Encoded`. Naming the encoded side as the type side is named gives the user's own name instead.
 */
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"

/** A schema whose encoded side bears the type side's identifier (and, in a union, each member's); else itself. */
export const named = <T, E>(schema: Schema.Codec<T, E>): Schema.Codec<T, E> => {
  const { ast } = schema
  if (ast._tag === "Union" && ast.encoding === undefined) {
    const members = ast.types.map((member) => named(Schema.make<Schema.Codec<unknown, unknown>>(member)))
    if (members.every((member, index) => member.ast === ast.types[index])) return schema
    // The same union of the same members, each now named: it decodes and encodes as the original did.
    return Schema.Union(members).annotate(ast.annotations ?? {}) as unknown as Schema.Codec<T, E>
  }
  const identifier = SchemaAST.resolveIdentifier(ast)
  if (identifier === undefined || SchemaAST.resolveIdentifier(SchemaAST.toEncoded(ast)) !== undefined) return schema
  return Schema.annotateEncoded<Schema.Codec<T, E>>({ identifier })(schema)
}
