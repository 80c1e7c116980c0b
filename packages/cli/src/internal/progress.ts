/**
 * A rebuild's progress: a bar redrawn in place on a terminal, plain lines otherwise.
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Render from "./render.ts"

/** How far a rebuild is. */
export interface Progress {
  readonly eventsDone: number
  readonly eventsTotal: number
  readonly eventsPerSecond: number
}

const timeLeft = (p: Progress): string =>
  p.eventsDone >= p.eventsTotal
    ? "0s"
    : p.eventsPerSecond > 0
      ? Render.seconds((p.eventsTotal - p.eventsDone) / p.eventsPerSecond)
      : "?"

/** `1,234/5,000 events, 812 ev/s, ~5s left`. */
export const describe = (p: Progress): string =>
  `${p.eventsDone.toLocaleString("en")}/${p.eventsTotal.toLocaleString("en")} events, ${p.eventsPerSecond.toLocaleString("en")} ev/s, ~${timeLeft(p)} left`

/** `[########------------]  40% ` and {@link describe}. */
export const bar = (p: Progress, width = 30): string => {
  const ratio = p.eventsTotal === 0 ? 1 : Math.min(1, p.eventsDone / p.eventsTotal)
  const filled = Math.round(ratio * width)
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${String(Math.floor(ratio * 100)).padStart(3)}%  ${describe(p)}`
}

/** Shows one progress report: the bar redrawn on the same line when `animate`, else a line on stderr. */
export const show = (label: string, p: Progress, animate: boolean): Effect.Effect<void> =>
  animate
    ? Effect.sync(() => {
        process.stdout.write(`\r\x1b[K${label} ${bar(p)}`)
      })
    : Console.error(`${label}: ${describe(p)}`)

/** Ends the bar's line on a terminal. */
export const end = (animate: boolean): Effect.Effect<void> =>
  animate ? Effect.sync(() => process.stdout.write("\n")) : Effect.void
