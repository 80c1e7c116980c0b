/**
 * A `Duplex` that speaks the Postgres wire protocol to an in-process PGlite: what `@effect/sql-pg` writes is cut
 * into whole frontend messages and handed to `execProtocolRawStream`; PGlite's answer is pushed back as the
 * "server's" bytes. No socket, no TCP.
 *
 * Private: the public surface is `PgliteClient`.
 */
import type { PGlite } from "@electric-sql/pglite"
import { Duplex } from "node:stream"

/** A `NotificationResponse` seen in PGlite's output. */
export interface WireNotification {
  readonly processId: number
  readonly channel: string
  readonly payload: string
}

const sslRequestCode = 80877103
const gssEncRequestCode = 80877104
const cancelRequestCode = 80877102
const noByte = new Uint8Array([0x4e])
const decoder = new TextDecoder()
const encoder = new TextEncoder()

const readInt32 = (bytes: Uint8Array, at: number): number =>
  ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0

const concat = (chunks: ReadonlyArray<Uint8Array>): Uint8Array => {
  if (chunks.length === 1) return chunks[0]!
  let length = 0
  for (const chunk of chunks) length += chunk.length
  const out = new Uint8Array(length)
  let at = 0
  for (const chunk of chunks) {
    out.set(chunk, at)
    at += chunk.length
  }
  return out
}

const simpleQuery = (text: string): Uint8Array => {
  const body = encoder.encode(text)
  const frame = new Uint8Array(body.length + 6)
  const length = body.length + 5
  frame[0] = 0x51
  frame[1] = (length >>> 24) & 0xff
  frame[2] = (length >>> 16) & 0xff
  frame[3] = (length >>> 8) & 0xff
  frame[4] = length & 0xff
  frame.set(body, 5)
  return frame
}

/**
 * PGlite has one session and it outlives a client: what one client leaves in it (an open transaction after a
 * crash, named prepared statements, LISTENs) must not leak into the next client on the same instance.
 */
const resetSession = concat([simpleQuery("ROLLBACK"), simpleQuery("DEALLOCATE ALL"), simpleQuery("UNLISTEN *")])

/** Runs the reset, discarding its answer. */
export const reset = (db: PGlite): Promise<void> => db.execProtocolRawStream(resetSession, { onRawData: () => {} })

const readCString = (bytes: Uint8Array, at: number): [string, number] => {
  let end = at
  while (end < bytes.length && bytes[end] !== 0) end++
  return [decoder.decode(bytes.subarray(at, end)), end + 1]
}

/** Finds every `NotificationResponse` ('A') in a run of whole backend messages. */
export const scanNotifications = (bytes: Uint8Array, onNotification: (n: WireNotification) => void): void => {
  let at = 0
  while (at + 5 <= bytes.length) {
    const type = bytes[at]!
    const length = readInt32(bytes, at + 1)
    const end = at + 1 + length
    if (end > bytes.length) return
    if (type === 0x41) {
      const processId = readInt32(bytes, at + 5)
      const [channel, next] = readCString(bytes, at + 9)
      const [payload] = readCString(bytes, next)
      onNotification({ processId, channel, payload })
    }
    at = end
  }
}

/**
 * One "connection" to PGlite. The first message has no type byte (startup, or an SSL/GSS/cancel request); after
 * that every message is a type byte plus a length. Only whole messages are passed to PGlite, and the next write is
 * not taken before PGlite has answered the previous one, so calls never overlap.
 */
export const makeDuplex = (db: PGlite, onNotification: (n: WireNotification) => void): Duplex => {
  let pending: Uint8Array = new Uint8Array(0)
  let started = false

  /** Cuts the longest prefix of whole messages off `pending`, handling pre-startup requests on the way. */
  const take = (duplex: Duplex): { readonly startup: Uint8Array | undefined; readonly messages: Uint8Array } => {
    let startup: Uint8Array | undefined
    let at = 0
    while (!started && pending.length - at >= 8) {
      const length = readInt32(pending, at)
      if (pending.length - at < length) break
      const code = readInt32(pending, at + 4)
      const frame = pending.subarray(at, at + length)
      at += length
      if (code === sslRequestCode || code === gssEncRequestCode) {
        duplex.push(noByte)
      } else if (code === cancelRequestCode) {
        // PGlite runs a statement synchronously to its end: there is nothing to cancel. Close like a server does.
        duplex.push(null)
      } else {
        startup = frame
        started = true
      }
    }
    let end = at
    if (started) {
      while (pending.length - end >= 5) {
        const length = readInt32(pending, end + 1)
        if (pending.length - end < 1 + length) break
        end += 1 + length
      }
    }
    const messages = pending.slice(at, end)
    pending = pending.slice(end)
    return { startup, messages }
  }

  const run = async (duplex: Duplex, startup: Uint8Array | undefined, messages: Uint8Array): Promise<void> => {
    if (startup !== undefined) {
      const answer = (await db.execProtocolRaw(startup)).slice()
      await reset(db)
      if (answer.length > 0) duplex.push(answer)
    }
    if (messages.length === 0) return
    // `execProtocolRawStream` hands the bytes over as they are produced without keeping a parsed copy of every
    // message inside PGlite (which `execProtocolRaw` does, for the life of the instance).
    const out: Array<Uint8Array> = []
    await db.execProtocolRawStream(messages, { onRawData: (chunk) => void out.push(chunk.slice()) })
    if (out.length === 0) return
    const answer = concat(out)
    scanNotifications(answer, onNotification)
    duplex.push(answer)
  }

  return new Duplex({
    read() {},
    write(chunk: Uint8Array, _encoding, callback) {
      pending = pending.length === 0 ? chunk : concat([pending, chunk])
      const { messages, startup } = take(this)
      if (startup === undefined && messages.length === 0) return callback()
      run(this, startup, messages).then(
        () => callback(),
        (error: unknown) => callback(error instanceof Error ? error : new Error(String(error)))
      )
    },
    final(callback) {
      this.push(null)
      callback()
    },
    destroy(error, callback) {
      if (!started) return callback(error)
      reset(db).then(
        () => callback(error),
        () => callback(error)
      )
    }
  })
}
