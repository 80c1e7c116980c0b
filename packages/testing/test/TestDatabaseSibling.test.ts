import { layer } from "@effect/vitest"
import { TestDatabase } from "@evently/testing"
import { probeIsolation } from "./isolation.ts"

// A second file on the same table name: vitest runs it in parallel with TestDatabase.test.ts.
layer(TestDatabase.layer(), { excludeTestServices: true, timeout: "60 seconds" })(
  "TestDatabase (sibling file)",
  (it) => {
    it.effect("does not see the rows of a test file running at the same time", () => probeIsolation("second"))
  }
)
