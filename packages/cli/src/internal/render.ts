/**
 * Output: aligned tables for people, JSON for scripts (bigints as strings, dates as ISO text), durations and ages.
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"

/** JSON with bigints as decimal strings and dates as ISO strings. */
export const toJson = (value: unknown, indent?: number): string =>
  JSON.stringify(value, (_key, v: unknown) => (typeof v === "bigint" ? v.toString() : v), indent)

/** Prints a value as JSON on stdout. */
export const printJson = (value: unknown): Effect.Effect<void> => Console.log(toJson(value, 2))

// Control characters (an escape sequence can clear the screen, retitle the window or hide text), line and paragraph
// separators and bidirectional overrides: what a stored name or error must not do to an operator's terminal.
const unprintable = (code: number): boolean =>
  code < 0x20 ||
  (code >= 0x7f && code <= 0x9f) ||
  code === 0x2028 ||
  code === 0x2029 ||
  (code >= 0x202a && code <= 0x202e) ||
  (code >= 0x2066 && code <= 0x2069)

const whitespace = new Set(["\t", "\n", "\v", "\f", "\r"])

const shown = (c: string): string => {
  if (!unprintable(c.charCodeAt(0))) return c
  return whitespace.has(c) ? " " : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`
}

/** `text` safe to print on a terminal as one line: whitespace controls as a space, other controls as `\uXXXX`. */
export const printable = (text: string): string => Array.from(text, shown).join("")

/** A column of a table: its header and how a row shows in it. */
export interface Column<A> {
  readonly header: string
  readonly cell: (row: A) => string
  readonly align?: "left" | "right"
}

/** The rows as an aligned table with a header line; `empty` when there are none. */
export const table = <A>(rows: ReadonlyArray<A>, columns: ReadonlyArray<Column<A>>, empty: string): string => {
  if (rows.length === 0) return empty
  const cells = rows.map((row) => columns.map((column) => printable(column.cell(row))))
  const widths = columns.map((column, i) => Math.max(column.header.length, ...cells.map((line) => line[i]!.length)))
  const line = (values: ReadonlyArray<string>) =>
    values
      .map((value, i) => (columns[i]!.align === "right" ? value.padStart(widths[i]!) : value.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd()
  return [line(columns.map((c) => c.header)), ...cells.map(line)].join("\n")
}

/** A duration in seconds as `850ms`, `42s`, `3m 20s`, `5h 02m`, `3d 4h`. */
export const seconds = (value: number): string => {
  if (!Number.isFinite(value) || value < 0) return "-"
  if (Math.round(value * 1000) < 1000) return `${Math.round(value * 1000)}ms`
  // Rounded once, then split: 119.6 s is 2m 00s, never 1m 60s.
  const s = Math.round(value)
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`
  if (s < 86400) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`
}

/** A date as `2026-12-03 18:24:20` (UTC), or `-`. */
export const date = (value: Date | null | undefined): string =>
  value === null || value === undefined ? "-" : value.toISOString().slice(0, 19).replace("T", " ")

/** Text cut to `max` characters. */
export const excerpt = (text: string, max: number): string => {
  const line = printable(text)
  return line.length > max ? `${line.slice(0, max - 1)}…` : line
}
