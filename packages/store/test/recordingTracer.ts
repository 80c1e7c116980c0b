/** What the span tests share: a tracer that records every span it starts. */
import * as Tracer from "effect/Tracer"

/** A tracer that records every span it starts, and those spans. */
export const recording = () => {
  const spans: Array<Tracer.NativeSpan> = []
  const tracer = Tracer.make({
    span: (options) => {
      const span = new Tracer.NativeSpan(options)
      spans.push(span)
      return span
    }
  })
  return { spans, tracer }
}
