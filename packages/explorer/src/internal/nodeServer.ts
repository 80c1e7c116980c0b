/**
 * A Node HTTP server for a route layer, without a platform package: `node:http` in front of
 * `HttpRouter.toWebHandler`. Bodies stream both ways (the live tail is a never-ending response); a client that goes
 * away cancels its response. On a loopback address, requests must name a loopback host (`localhost`, `127.0.0.1`,
 * `[::1]`): a web page of another site cannot reach the explorer by pointing its own domain name at 127.0.0.1.
 */
import * as PgSchema from "@evently/postgres/PgSchema"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as HttpRouter from "effect/http/HttpRouter"
import * as SqlClient from "effect/sql/SqlClient"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import { hostName, loopback } from "./host.ts"

type WebHandler = (request: Request) => Promise<Response>

const respond = async (handler: WebHandler, req: IncomingMessage, res: ServerResponse, onlyLoopback: boolean) => {
  if (onlyLoopback && !loopback(hostName(req.headers.host))) {
    res.writeHead(421, { "content-type": "text/plain; charset=utf-8" }).end("This explorer answers on localhost only\n")
    return
  }
  const controller = new AbortController()
  res.on("close", () => controller.abort())
  const headers = new Headers()
  for (const [name, value] of Object.entries(req.headers)) {
    if (typeof value === "string") headers.set(name, value)
    else if (Array.isArray(value)) for (const v of value) headers.append(name, v)
  }
  const hasBody = req.method !== "GET" && req.method !== "HEAD"
  const request = new Request(`http://localhost${req.url ?? "/"}`, {
    method: req.method ?? "GET",
    headers,
    signal: controller.signal,
    ...(hasBody ? { body: Readable.toWeb(req) as ReadableStream<Uint8Array>, duplex: "half" } : {})
  } as RequestInit)
  const response = await handler(request)
  res.writeHead(response.status, Object.fromEntries(response.headers))
  if (response.body === null) res.end()
  else await pipeline(Readable.fromWeb(response.body as import("node:stream/web").ReadableStream), res)
}

/** Serves `routes` on `host:port` while the scope is open; succeeds with the URL of `path`. */
export const listen = (
  routes: Layer.Layer<never, never, HttpRouter.HttpRouter | SqlClient.SqlClient>,
  options: { readonly host: string; readonly port: number; readonly path: string }
) =>
  Effect.gen(function* () {
    // Only the database and its table names: the caller's own router (when it runs a server too) must not replace
    // the one the handler builds.
    const context = Context.make(SqlClient.SqlClient, yield* SqlClient.SqlClient).pipe(
      Context.add(PgSchema.Tables, yield* PgSchema.Tables)
    )
    const app = HttpRouter.toWebHandler(Layer.provide(routes, Layer.succeedContext(context)), { disableLogger: true })
    yield* Effect.addFinalizer(() => Effect.promise(() => app.dispose()))
    const handler: WebHandler = (request) => app.handler(request)
    const onlyLoopback = loopback(options.host)
    const server = createServer((req, res) => {
      respond(handler, req, res, onlyLoopback).catch(() => {
        if (!res.headersSent) res.writeHead(500)
        res.end()
      })
    })
    yield* Effect.acquireRelease(
      Effect.callback<void, Error>((resume) => {
        server.once("error", (error) => resume(Effect.fail(error)))
        server.listen(options.port, options.host, () => resume(Effect.void))
      }),
      () =>
        Effect.callback<void>((resume) => {
          server.close(() => resume(Effect.void))
          server.closeAllConnections()
        })
    )
    const address = server.address() as AddressInfo
    const host = address.family === "IPv6" ? `[${address.address}]` : address.address
    return new URL(options.path, `http://${host}:${address.port}`)
  })
