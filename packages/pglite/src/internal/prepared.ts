/**
 * A prepared data directory for the in-memory PGlite, so a fresh database does not run initdb at every start.
 *
 * `PGlite.create()` with no data directory runs initdb in a second PGlite instance, copies the result in and only
 * then starts Postgres: seconds, most of them spent before the first query. Here the first in-memory start in a
 * given setup (PGlite version, start parameters, this module's format) runs initdb once in a throwaway instance,
 * shuts it down cleanly and keeps the data directory's files in one bundle in a cache directory (by default
 * `os.tmpdir()/evently-pglite`); every later start writes those files into the new instance's in-memory file
 * system (no copies: the files are views into the bundle just read) and starts Postgres on them. Each start gets a
 * fresh, empty database of its own; the bundle on disk is never written through.
 *
 * The bundle is keyed by everything that shapes the data directory, so a new PGlite version, other start
 * parameters or another bundle format get a bundle of their own; one that cannot be read or started is removed and
 * made again. Nothing of it is committed: it is made by this code, on first use.
 *
 * Private: the public surface is `PgliteClient`.
 */
import { PGlite } from "@electric-sql/pglite"
import { EmscriptenBuiltinFilesystem } from "@electric-sql/pglite/basefs"
import { createHash } from "node:crypto"
import * as Fs from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import * as Path from "node:path"

/** Bumped when the bundle's layout or what goes into it changes. */
const format = 2

/**
 * Postgres's shared buffers for the in-memory database. PGlite's initdb writes `shared_buffers = 128MB`, and
 * Postgres zeroes all of it at every start: measured here, that alone was 0.7 to 1.7 s of a start. The whole
 * database already lives in memory, so a small buffer pool costs little (an evicted page is a copy to the in-memory
 * file system, no I/O).
 */
const sharedBuffers = "16MB"

/**
 * The start parameters of an in-memory PGlite: PGlite's own, with a smaller buffer pool.
 */
export const startParams: ReadonlyArray<string> = [
  ...PGlite.defaultStartParams,
  "-c",
  `shared_buffers=${sharedBuffers}`
]

/** One entry of a data directory: a directory, or a file with its size and the length of its stored prefix. */
type Entry =
  | { readonly path: string; readonly kind: "dir"; readonly mode: number }
  | {
      readonly path: string
      readonly kind: "file"
      readonly mode: number
      readonly size: number
      readonly stored: number
    }

/** A data directory: its entries, in creation order, and the stored bytes of its files, one after the other. */
export interface Bundle {
  readonly entries: ReadonlyArray<Entry>
  readonly data: Uint8Array
}

/** The installed PGlite's version, part of every bundle's key. */
const pgliteVersion = (): string => {
  const require = createRequire(import.meta.url)
  let dir = Path.dirname(require.resolve("@electric-sql/pglite"))
  for (;;) {
    const file = Path.join(dir, "package.json")
    if (Fs.existsSync(file)) {
      const pkg = JSON.parse(Fs.readFileSync(file, "utf8")) as { name?: string; version?: string }
      if (pkg.name === "@electric-sql/pglite" && typeof pkg.version === "string") return pkg.version
    }
    const parent = Path.dirname(dir)
    if (parent === dir) return "unknown"
    dir = parent
  }
}

/** The bundle's key: a hash of everything that shapes the data directory. */
export const key = (): string =>
  createHash("sha256")
    .update(JSON.stringify({ format, pglite: pgliteVersion(), startParams }))
    .digest("hex")
    .slice(0, 24)

/** Where bundles are kept when no directory is given: `EVENTLY_PGLITE_CACHE`, or `evently-pglite` in the temp dir. */
export const defaultCacheDir = (): string => {
  const fromEnv = process.env["EVENTLY_PGLITE_CACHE"]
  return fromEnv !== undefined && fromEnv !== "" ? fromEnv : Path.join(tmpdir(), "evently-pglite")
}

/** The bundle file for a cache directory. */
export const bundlePath = (cacheDir: string): string => Path.join(cacheDir, `pgdata-${key()}.bin`)

/**
 * How much of a file is stored: a long run of trailing zeros (a WAL segment is 16 MB, mostly zeros) is left out
 * and given back as zeros. A short one is kept: most relation files end in a few zero bytes, and such a file can
 * be handed to the file system as a view into the bundle, where a trimmed one has to be allocated and copied.
 */
const storedLength = (bytes: Uint8Array): number => {
  let end = bytes.length
  while (end > 0 && bytes[end - 1] === 0) end--
  return bytes.length - end >= 1024 * 1024 ? end : bytes.length
}

/** Encodes a bundle: a 4-byte little-endian manifest length, the manifest as JSON, then the stored bytes. */
export const encode = (bundle: Bundle): Uint8Array => {
  const manifest = new TextEncoder().encode(JSON.stringify({ format, entries: bundle.entries }))
  const out = new Uint8Array(4 + manifest.length + bundle.data.length)
  new DataView(out.buffer).setUint32(0, manifest.length, true)
  out.set(manifest, 4)
  out.set(bundle.data, 4 + manifest.length)
  return out
}

/** Decodes a bundle, checking that its manifest and its data agree; `undefined` when they do not. */
export const decode = (bytes: Uint8Array): Bundle | undefined => {
  if (bytes.length < 4) return undefined
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true)
  if (4 + length > bytes.length) return undefined
  let manifest: { format?: unknown; entries?: ReadonlyArray<Entry> }
  try {
    manifest = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + length))) as typeof manifest
  } catch {
    return undefined
  }
  if (manifest.format !== format || !Array.isArray(manifest.entries)) return undefined
  const data = bytes.subarray(4 + length)
  let stored = 0
  for (const entry of manifest.entries) if (entry.kind === "file") stored += entry.stored
  return stored === data.length ? { entries: manifest.entries, data } : undefined
}

/** Reads the data directory of a PGlite file system into a bundle. */
const capture = (fs: PGliteFs, root: string): Bundle => {
  const entries: Array<Entry> = []
  const chunks: Array<Uint8Array> = []
  let total = 0
  const walk = (dir: string): void => {
    for (const name of fs.readdir(dir).toSorted()) {
      if (name === "." || name === "..") continue
      const path = `${dir}/${name}`
      const relative = path.slice(root.length + 1)
      const { mode } = fs.stat(path)
      if (fs.isDir(mode)) {
        entries.push({ path: relative, kind: "dir", mode })
        walk(path)
      } else if (fs.isFile(mode)) {
        const bytes = fs.readFile(path, { encoding: "binary" })
        const stored = storedLength(bytes)
        entries.push({ path: relative, kind: "file", mode, size: bytes.length, stored })
        chunks.push(bytes.subarray(0, stored))
        total += stored
      }
    }
  }
  walk(root)
  const data = new Uint8Array(total)
  let at = 0
  for (const chunk of chunks) {
    data.set(chunk, at)
    at += chunk.length
  }
  return { entries, data }
}

/** Writes a bundle's files under `root` in a PGlite file system; each fully stored file is a view, not a copy. */
const restore = (fs: PGliteFs, root: string, bundle: Bundle): void => {
  fs.mkdirTree(root)
  let at = 0
  for (const entry of bundle.entries) {
    const path = `${root}/${entry.path}`
    if (entry.kind === "dir") {
      fs.mkdirTree(path)
    } else {
      let contents = bundle.data.subarray(at, at + entry.stored)
      at += entry.stored
      if (entry.stored < entry.size) {
        const full = new Uint8Array(entry.size)
        full.set(contents)
        contents = full
      }
      fs.writeFile(path, contents, { canOwn: true })
    }
    fs.chmod(path, entry.mode)
  }
}

/** What of Emscripten's FS this module uses. */
type PGliteFs = PGlite["Module"]["FS"]

/**
 * PGlite's in-memory file system, with two additions: it can start from a bundle (its files are written in before
 * Postgres looks for a database, so PGlite resumes it instead of running initdb), and it can capture the data
 * directory when PGlite closes it, after Postgres has shut down cleanly.
 */
class PreparedFs extends EmscriptenBuiltinFilesystem {
  readonly seed: Bundle | undefined
  captured: Bundle | undefined

  constructor(seed: Bundle | undefined) {
    super()
    this.seed = seed
  }

  override async initialSyncFs(): Promise<void> {
    if (this.seed !== undefined) restore(this.pg!.Module.FS, PGlite.paths.PGDATA, this.seed)
  }

  override async closeFs(): Promise<void> {
    if (this.seed === undefined) this.captured = capture(this.pg!.Module.FS, PGlite.paths.PGDATA)
  }
}

/**
 * Runs initdb in a throwaway in-memory PGlite, shuts it down cleanly and returns its data directory.
 */
export const prepare = async (): Promise<Bundle> => {
  const fs = new PreparedFs(undefined)
  const db = await PGlite.create({ fs, startParams: [...startParams] })
  await db.close()
  if (fs.captured === undefined) throw new Error("PGlite closed without handing over its data directory")
  return fs.captured
}

/** Reads the bundle at `path`: `undefined` when there is none or it is not a bundle this code wrote. */
export const read = (path: string): Bundle | undefined => {
  let bytes: Uint8Array
  try {
    bytes = Fs.readFileSync(path)
  } catch {
    return undefined
  }
  return decode(bytes)
}

/**
 * Writes a bundle to `path` atomically (a temporary file renamed into place), so a concurrent reader sees either
 * no bundle or a whole one, and two processes preparing at once both succeed.
 */
export const write = (path: string, bundle: Bundle): void => {
  Fs.mkdirSync(Path.dirname(path), { recursive: true })
  const temporary = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`
  try {
    Fs.writeFileSync(temporary, encode(bundle))
    Fs.renameSync(temporary, path)
  } finally {
    Fs.rmSync(temporary, { force: true })
  }
}

/** Removes a bundle that could not be started, so the next start prepares a new one. */
export const remove = (path: string): void => Fs.rmSync(path, { force: true })

/** Starts an in-memory PGlite on a bundle's data directory. */
export const start = (bundle: Bundle): Promise<PGlite> =>
  PGlite.create({ fs: new PreparedFs(bundle), startParams: [...startParams] })
