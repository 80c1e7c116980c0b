/**
 * The version of `@evently/http`, read from its package.json (one folder up from both `src/` and `dist/`), so that it
 * follows each release without a copy to keep in step: the OpenAPI documents' default version.
 */
import { createRequire } from "node:module"

const manifest: unknown = createRequire(import.meta.url)("../../package.json")

export const packageVersion: string =
  typeof manifest === "object" && manifest !== null && "version" in manifest && typeof manifest.version === "string"
    ? manifest.version
    : "0.0.0"
