/**
 * A streaming replica of the local test server, started by the test itself: `pg_basebackup` into a temporary
 * directory, a hot standby on a free port, stopped (`-m immediate`) and removed when the scope closes.
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { promisify } from "node:util"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as SqlClient from "effect/sql/SqlClient"
import { PgReplica } from "@evently/postgres"

const run = promisify(execFile)
const bin = process.env["PG_BIN"] ?? "/usr/lib/postgresql/15/bin"
const primaryHost = "127.0.0.1"
const primaryPort = 5432

/** Postgres refuses to run as root: as root, the standby runs as the `postgres` user. */
const asRoot = process.getuid?.() === 0

const command = (program: string, args: ReadonlyArray<string>) =>
  asRoot
    ? run("runuser", ["-u", "postgres", "--", path.join(bin, program), ...args])
    : run(path.join(bin, program), args)

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })

const noReplication = (stderr: string) =>
  new Error(
    `pg_basebackup could not connect for replication to ${primaryHost}:${primaryPort}:\n${stderr}\n` +
      `The replica test needs a replication connection from 127.0.0.1 with trust: add the line\n` +
      `  host replication postgres 127.0.0.1/32 trust\n` +
      `to the server's pg_hba.conf (psql -Atc "show hba_file") and reload it (psql -c "select pg_reload_conf()"); ` +
      `.ci/run does this. The server also needs wal_level = replica (the default) and max_wal_senders > 0.`
  )

const standbyConf = (port: number, dir: string) =>
  [
    `port = ${port}`,
    `listen_addresses = '127.0.0.1'`,
    `unix_socket_directories = '${dir}'`,
    `hot_standby = on`,
    `shared_buffers = 16MB`,
    `fsync = off`,
    // The tests' reads are short; a replayed vacuum must not cancel them.
    `max_standby_streaming_delay = -1`,
    `hot_standby_feedback = on`,
    ""
  ].join("\n")

/** Where the running standby answers. */
export interface Standby {
  readonly port: number
  readonly dir: string
}

/** Clones the local server and starts the clone as a hot standby (see the module). */
export const startStandby = async (): Promise<Standby> => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "evently-replica-"))
  if (asRoot) {
    const { stdout } = await run("id", ["-u", "postgres"])
    const { stdout: group } = await run("id", ["-g", "postgres"])
    fs.chownSync(dir, Number(stdout.trim()), Number(group.trim()))
  }
  const data = path.join(dir, "data")
  const port = await freePort()
  const backup = ["-h", primaryHost, "-p", String(primaryPort), "-U", "postgres", "-D", data]
  backup.push("-R", "-X", "stream", "--checkpoint=fast", "--no-sync")
  try {
    await command("pg_basebackup", backup)
  } catch (error) {
    fs.rmSync(dir, { recursive: true, force: true })
    const stderr = String((error as { stderr?: unknown }).stderr ?? error)
    throw /replication connection|pg_hba\.conf/.test(stderr) ? noReplication(stderr) : new Error(stderr)
  }
  const write = (name: string, text: string) => {
    fs.writeFileSync(path.join(data, name), text)
    if (asRoot) fs.chownSync(path.join(data, name), fs.statSync(data).uid, fs.statSync(data).gid)
  }
  write("postgresql.conf", standbyConf(port, dir))
  write("pg_hba.conf", "local all all trust\nhost all all 127.0.0.1/32 trust\n")
  await command("pg_ctl", ["-D", data, "-l", path.join(dir, "log"), "-w", "-t", "30", "start"])
  return { port, dir }
}

/** Stops the standby at once and removes its directory. */
export const stopStandby = async (standby: Standby): Promise<void> => {
  await command("pg_ctl", ["-D", path.join(standby.dir, "data"), "-m", "immediate", "-w", "stop"]).catch(() => {})
  fs.rmSync(standby.dir, { recursive: true, force: true })
}

/** A hot standby of the local server for the scope (see the module). */
export const standby = Effect.acquireRelease(Effect.promise(startStandby), (running) =>
  Effect.promise(() => stopStandby(running))
)

/**
 * `PgReplica.Replica` on the standby at `port`, on the database the primary's `SqlClient` is connected to, once the
 * standby has replayed the primary's WAL up to now (the database's creation and migrations included).
 */
export const layerReplica = (port: number) =>
  Layer.unwrap(
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const [row] = yield* sql<{ db: string }>`select current_database() as db`
      const replica = PgReplica.layer({ host: "127.0.0.1", port, database: row!.db, username: "postgres" })
      const ready = Effect.gen(function* () {
        const { sql: standbySql } = yield* PgReplica.Replica
        // The database appears on the standby once its creation is replayed.
        yield* Effect.retry(standbySql`select 1`, { times: 500, schedule: Schedule.spaced("20 millis") })
        yield* PgReplica.caughtUp()
      })
      return Layer.effectDiscard(ready).pipe(Layer.provideMerge(replica))
    })
  ).pipe(Layer.orDie)
