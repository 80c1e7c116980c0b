import { createHash } from "node:crypto"

const hex = (bytes: Uint8Array): string => Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("")

const parse = (uuid: string): Uint8Array => Uint8Array.from(Buffer.from(uuid.replaceAll("-", ""), "hex"))

/** A name-based (version 5, SHA-1) UUID, as RFC 9562 defines it: the same namespace and name give the same id. */
export const v5 = (namespace: string, name: string): string => {
  const digest = createHash("sha1").update(parse(namespace)).update(name, "utf8").digest()
  const bytes = Uint8Array.from(digest.subarray(0, 16))
  bytes[6] = (bytes[6]! & 0x0f) | 0x50
  bytes[8] = (bytes[8]! & 0x3f) | 0x80
  const h = hex(bytes)
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}
