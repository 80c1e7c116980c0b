/**
 * How evently tells a fault that a retry can fix (a lost connection, a serialization failure, a timeout) from one that
 * no retry can fix (bad SQL, a value the database refuses, missing tables), looking through the wrappers evently puts
 * around a storage error (`StoreError`, `SubscriptionStorageError`) down to the `SqlError` and its SQLSTATE.
 *
 * @since 0.2.0
 */
import * as Predicate from "effect/Predicate"
import * as SqlError from "effect/sql/SqlError"

/**
 * What a fault is: `Transient` (a retry after reconnecting can succeed), `Permanent` (the same request will fail the
 * same way) or `Unknown` (neither is certain: an exception raised by a trigger, an unclassified driver error).
 *
 * @since 0.2.0
 * @category models
 */
export type Kind = "Transient" | "Permanent" | "Unknown"

// SQLSTATE classes: 08 connection exception, 40 transaction rollback (serialization failure, deadlock), 53
// insufficient resources (too many connections), 57 operator intervention (query canceled by statement_timeout,
// pg_terminate_backend, shutdown), 58 system error (I/O), and 55P03 lock not available (lock_timeout).
const transientClasses = new Set(["08", "40", "53", "57", "58"])
const transientCodes = new Set(["55P03"])
// 22 data exception (a NUL byte, an out-of-range number), 23 integrity constraint violation, 25 invalid transaction
// state (a statement in a transaction already aborted, for example by an error the code swallowed), 28 invalid
// authorization, 3D invalid catalog name, 3F invalid schema name, 42 syntax error or access rule violation (an
// undefined table), 0A feature not supported, 2B/2F/38/39 routine and dependency errors.
const permanentClasses = new Set(["22", "23", "25", "28", "3D", "3F", "42", "0A", "2B", "2F", "38", "39"])

const transientReasons = new Set([
  "ConnectionError",
  "DeadlockError",
  "SerializationError",
  "LockTimeoutError",
  "StatementTimeoutError"
])
const permanentReasons = new Set([
  "AuthenticationError",
  "AuthorizationError",
  "SqlSyntaxError",
  "UniqueViolation",
  "ConstraintError"
])

const sqlState = (reason: SqlError.SqlErrorReason): string | undefined => {
  const cause: unknown = reason.cause
  return Predicate.hasProperty(cause, "code") && typeof cause.code === "string" && /^[0-9A-Z]{5}$/.test(cause.code)
    ? cause.code
    : undefined
}

const ofSqlError = (error: SqlError.SqlError): Kind => {
  const code = sqlState(error.reason)
  if (code !== undefined) {
    if (transientCodes.has(code) || transientClasses.has(code.slice(0, 2))) return "Transient"
    if (permanentClasses.has(code.slice(0, 2))) return "Permanent"
  }
  if (transientReasons.has(error.reason._tag)) return "Transient"
  if (permanentReasons.has(error.reason._tag)) return "Permanent"
  return "Unknown"
}

// A socket closed under a query surfaces from some drivers as a plain error with a code such as ECONNRESET.
const isSocketError = (error: unknown): boolean =>
  Predicate.hasProperty(error, "code") &&
  typeof error.code === "string" &&
  /^(ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|ENOTCONN|EHOSTUNREACH)$/.test(error.code)

// evently's own refusals of bad input, and a stored row that cannot be read: the same request fails the same way.
const permanentTags = new Set([
  "InvalidStreamName",
  "InvalidReadOptions",
  "InvalidEvent",
  "InvalidSubscription",
  "UnreadableEvent"
])

/**
 * Classifies a fault, looking through `cause` chains (at most a few levels deep) for the `SqlError` beneath.
 *
 * @since 0.2.0
 * @category classification
 */
export const kindOf = (error: unknown): Kind => {
  let current: unknown = error
  for (let depth = 0; depth < 6 && current !== undefined && current !== null; depth++) {
    if (SqlError.isSqlError(current)) return ofSqlError(current)
    if (SqlError.isSqlErrorReason(current)) return ofSqlError(new SqlError.SqlError({ reason: current }))
    if (isSocketError(current)) return "Transient"
    if (Predicate.hasProperty(current, "_tag") && permanentTags.has(current._tag as string)) return "Permanent"
    current = Predicate.hasProperty(current, "cause") ? current.cause : undefined
  }
  return "Unknown"
}

/**
 * Whether a retry after reconnecting can fix this fault: a lost or refused connection, a terminated backend, a
 * serialization failure or deadlock, a lock or statement timeout.
 *
 * @since 0.2.0
 * @category classification
 */
export const isTransient = (error: unknown): boolean => kindOf(error) === "Transient"

/**
 * Whether no retry can fix this fault: the same request fails the same way every time.
 *
 * @since 0.2.0
 * @category classification
 */
export const isPermanent = (error: unknown): boolean => kindOf(error) === "Permanent"
