/**
 * The headless transport of WorkbenchApi: serves the built UI over HTTP and the API over a WebSocket, on
 * 127.0.0.1 only. The WebSocket requires the random token printed with the URL, and accepts only pages of
 * this server (Origin check), so other local users' and web pages' scripts cannot drive the workbench.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { extname, join, normalize, sep } from 'node:path'
import { WebSocketServer, type WebSocket } from 'ws'
import { WsRequest, type WsServerMessage } from '../../shared/api'
import type { WorkbenchHost } from './workbench-host'

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
}

/** WebSocket frames larger than this are refused (the API's requests are small; results travel the other way). */
const MAX_REQUEST_BYTES = 1 << 20
/**
 * Bytes a client may leave unread before its live events are dropped: a stalled tab must not make the server
 * hold every event of a run in memory. It catches up with `runHistory` once it reads again.
 */
const MAX_BUFFERED_BYTES = 8 << 20

export interface WsServerHandle {
  /** The page to open, with the token. */
  url: string
  port: number
  token: string
  close(): Promise<void>
}

function tokenMatches(given: string | null, token: string): boolean {
  if (!given || given.length !== token.length) return false
  return timingSafeEqual(Buffer.from(given), Buffer.from(token))
}

/** The URL's path, decoded; null for a malformed URL or escape (`/%`, `/%E0%A4%A`). */
function requestPath(url: string | undefined): string | null {
  try {
    return decodeURIComponent(new URL(url ?? '/', 'http://127.0.0.1').pathname)
  } catch {
    return null
  }
}

async function serveStatic(root: string, request: IncomingMessage, response: ServerResponse) {
  const path = requestPath(request.url)
  if (path === null || path.includes('\0')) {
    response.writeHead(400, { 'Content-Type': 'text/plain' }).end('bad request')
    return
  }
  const file = normalize(join(root, path === '/' ? 'index.html' : path))
  if (!file.startsWith(root + sep) && file !== root) {
    response.writeHead(403).end()
    return
  }
  try {
    const info = await stat(file)
    if (!info.isFile()) throw new Error('not a file')
    response.writeHead(200, {
      'Content-Type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
      'Content-Length': info.size,
      'X-Content-Type-Options': 'nosniff',
      'Cache-Control': 'no-cache',
    })
    const stream = createReadStream(file)
    // A file removed between stat and read, or a client gone mid-transfer, ends this response only.
    stream.on('error', () => response.destroy())
    stream.pipe(response)
  } catch {
    response.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found')
  }
}

export async function startWsServer(
  host: WorkbenchHost,
  options: { port?: number; rendererDir: string; token?: string },
): Promise<WsServerHandle> {
  const token = options.token ?? randomBytes(24).toString('base64url')
  const root = normalize(options.rendererDir)
  const server: Server = createServer((request, response) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405).end()
      return
    }
    serveStatic(root, request, response).catch(() => {
      if (!response.headersSent) response.writeHead(500).end()
      else response.destroy()
    })
  })
  // Malformed HTTP from a client (or a reset mid-request) concerns that connection alone.
  server.on('clientError', (_error, socket) => socket.destroy())
  const sockets = new WebSocketServer({ noServer: true, maxPayload: MAX_REQUEST_BYTES })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve())
  })
  const address = server.address()
  if (!address || typeof address === 'string') throw new Error('the server has no TCP address')
  const origin = `http://127.0.0.1:${address.port}`
  // The page may be opened as 127.0.0.1 or as localhost; both name this server.
  const origins = new Set([origin, `http://localhost:${address.port}`])

  server.on('upgrade', (request, socket, head) => {
    // Registered first: a client that resets the connection while we answer must not take the server down.
    socket.on('error', () => socket.destroy())
    let allowed = false
    try {
      const url = new URL(request.url ?? '/', origin)
      allowed =
        url.pathname === '/api' &&
        tokenMatches(url.searchParams.get('token'), token) &&
        (request.headers.origin === undefined || origins.has(request.headers.origin))
    } catch {
      allowed = false
    }
    if (!allowed) {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n')
      return
    }
    sockets.handleUpgrade(request, socket, head, (ws) => connect(ws))
  })

  function connect(ws: WebSocket): void {
    const send = (message: WsServerMessage) => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(message))
    }
    const unsubscribe = host.api.onEvent((event) => {
      if (ws.bufferedAmount <= MAX_BUFFERED_BYTES) send({ event })
    })
    ws.on('close', unsubscribe)
    // A protocol error (an oversized or malformed frame, a reset) closes this connection, nothing more.
    ws.on('error', () => ws.terminate())
    ws.on('message', (data, isBinary) => {
      let request: WsRequest
      try {
        if (isBinary) throw new Error('binary frames are not part of the protocol')
        const parsed = WsRequest.safeParse(JSON.parse(String(data)))
        if (!parsed.success) throw new Error(parsed.error.issues[0]?.message ?? 'malformed request')
        request = parsed.data
      } catch (error) {
        // Without a readable id there is nobody to answer: close with a policy-violation code and reason.
        ws.close(1008, `invalid request: ${(error as Error).message}`.slice(0, 120))
        return
      }
      host.handleCall({ method: request.method, args: request.args }).then(
        (result) => send({ id: request.id, result }),
        (error: unknown) =>
          send({ id: request.id, error: error instanceof Error ? error.message : String(error) }),
      )
    })
  }

  return {
    url: `${origin}/?token=${token}`,
    port: address.port,
    token,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of sockets.clients) client.terminate()
        sockets.close()
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
