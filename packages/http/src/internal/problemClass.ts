/**
 * Problem classes whose body's schema carries their name. `HttpApiError.Problem` (effect 4.1) names only the class,
 * so OpenAPI, which documents the encoded side (the body), lists each problem as `<Tag>Encoded`. This is the same
 * declaration with the body's struct named after the tag: `NotFound`, not `NotFoundEncoded`.
 */
import * as Effect from "effect/Effect"
import * as ErrorReporter from "effect/ErrorReporter"
import * as HttpServerRespondable from "effect/http/HttpServerRespondable"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as ProblemDetails from "effect/http/ProblemDetails"
import type * as HttpApiError from "effect/http-api/HttpApiError"
import type * as HttpApiSchema from "effect/http-api/HttpApiSchema"
import * as Schema from "effect/Schema"

const encoding: HttpApiSchema.ResponseEncoding = { _tag: "Json", contentType: ProblemDetails.contentType }

/** A standard member dropped when missing or of the wrong JSON type (RFC 9457 §3.1), as effect's own problems do. */
const optionalMember = <S extends Schema.Constraint>(schema: S) =>
  Schema.optionalKey(schema).pipe(Schema.catchDecoding(() => Effect.succeedNone))

/** A member that decodes to its fixed value when missing or wrong, the value also being the constructor's default. */
const fixedMember = <const L extends string | number>(value: L) =>
  Schema.withDecodingDefaultKey<Schema.tag<L>>(Effect.succeed(value))(Schema.tag(value)).pipe(
    Schema.catchDecoding(() => Effect.succeedSome(value))
  )

/**
 * `HttpApiError.Problem<Self>()(tag, declaration, fields)`, the same class (a yieldable `Schema.Error` that renders as
 * `application/problem+json` with its status), with the body's schema named `tag` in OpenAPI.
 */
export const make =
  <Self>() =>
  <
    const Tag extends string,
    const Type extends string,
    const Status extends number,
    const Fields extends HttpApiError.ProblemExtensionFields = {}
  >(
    tag: Tag,
    declaration: HttpApiError.ProblemDeclaration<Type, Status>,
    fields?: Fields
  ): HttpApiError.ProblemClass<Self, Tag, Type, Status, Fields, {}> => {
    const struct = Schema.Struct({
      detail: optionalMember(Schema.String),
      instance: optionalMember(Schema.String),
      ...fields,
      type: Schema.tag(declaration.type),
      status: fixedMember(declaration.status),
      title: fixedMember(declaration.title)
    }).annotate({ identifier: tag })
    const encode = Schema.encodeUnknownEffect(struct)
    const Base = Schema.Error<{ readonly _tag: Tag }>(tag)(struct, {
      description: declaration.title,
      httpApiStatus: declaration.status,
      "~httpApiEncoding": encoding
    })
    Object.assign(Base.prototype, {
      _tag: tag,
      [ErrorReporter.ignore]: declaration.status < 500,
      [HttpServerRespondable.symbol](this: object) {
        return Effect.map(encode(this), (body) =>
          HttpServerResponse.jsonUnsafe(body, { status: declaration.status, contentType: ProblemDetails.contentType })
        )
      }
    })
    Object.defineProperty(Base.prototype, "message", {
      get(this: { readonly detail?: string }) {
        return this.detail ?? declaration.title
      },
      configurable: true
    })
    // The class `Schema.Error` built, with the members assigned above: what `HttpApiError.Problem` returns.
    return Base as unknown as HttpApiError.ProblemClass<Self, Tag, Type, Status, Fields, {}>
  }
