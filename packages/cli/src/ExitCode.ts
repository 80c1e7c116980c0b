/**
 * What the `evently` command's exit status means, and the error a command fails with to choose one. Scripts can rely
 * on these numbers: they do not change between versions.
 *
 * | code | meaning |
 * | ---- | ------- |
 * | 0    | done |
 * | 1    | failed: a database error or a bug (the message says which) |
 * | 2    | usage: the command line is wrong (unknown command or flag, a missing or malformed argument) |
 * | 3    | not found: no such subscription, projection, machine or stream |
 * | 4    | refused: a change that needs confirmation got none (no terminal and no `--yes`, or the answer was no) |
 * | 5    | findings: `verify` found stored events that do not decode |
 * | 6    | unavailable: no server answered, no such database, the login was refused, or the config module could not be loaded |
 * | 130  | interrupted (Ctrl-C, SIGTERM) |
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * The command did what it was asked.
 *
 * @since 0.1.0
 * @category codes
 */
export const Ok = 0

/**
 * A database error, or a bug.
 *
 * @since 0.1.0
 * @category codes
 */
export const Failed = 1

/**
 * The command line is wrong.
 *
 * @since 0.1.0
 * @category codes
 */
export const Usage = 2

/**
 * The subscription, projection, machine or stream named does not exist.
 *
 * @since 0.1.0
 * @category codes
 */
export const NotFound = 3

/**
 * A change that needs confirmation was not confirmed.
 *
 * @since 0.1.0
 * @category codes
 */
export const Refused = 4

/**
 * `verify` found stored events that do not decode.
 *
 * @since 0.1.0
 * @category codes
 */
export const Findings = 5

/**
 * No server answered, no such database, the login was refused, or the config module could not be loaded.
 *
 * @since 0.1.0
 * @category codes
 */
export const Unavailable = 6

/**
 * Interrupted by a signal.
 *
 * @since 0.1.0
 * @category codes
 */
export const Interrupted = 130

/**
 * A command's failure, with the exit code it ends the process with and the message printed on stderr.
 *
 * @since 0.1.0
 * @category errors
 */
export class CommandFailed extends Schema.TaggedError<CommandFailed>("@evently/cli/CommandFailed")("CommandFailed", {
  code: Schema.Int,
  reason: Schema.String
}) {
  override get message(): string {
    return this.reason
  }
}

/**
 * Fails a command with `code` and `reason`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fail = (code: number, reason: string): CommandFailed => new CommandFailed({ code, reason })
