/** A plain Node HTTP server with `attachLongLink` on 127.0.0.1:0 for the LongLink server tests, and what it saw. */
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { attachLongLink, type LongLinkConnection, type LongLinkHandle, type LongLinkOptions } from '../../server/longlink/index'

export const LL_PATH = '/ll'

export interface LogEntry {
  level: string
  event: string
  fields?: Record<string, unknown>
}

export interface LlServer {
  server: http.Server
  handle: LongLinkHandle
  /** `http://127.0.0.1:port/ll` */
  base: string
  /** `ws://127.0.0.1:port/ll` */
  wsBase: string
  origin: string
  /** Every connection handed to onConnection, in order. */
  conns: LongLinkConnection[]
  /** What each connection received, by conn id. */
  received: Map<string, (string | Uint8Array)[]>
  /** Each connection's close, by conn id. */
  closes: Map<string, [number, string]>
  logs: LogEntry[]
  close(): Promise<void>
}

const open = new Set<LlServer>()

/** The host's own handler for other paths: answers `host:<path>`. */
export function hostHandler(req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/plain' })
  res.end(`host:${req.url}`)
}

/**
 * Starts a server (its own request handler: {@link hostHandler}) with LongLink at {@link LL_PATH}. Every connection
 * echoes what it receives unless `onConnection` is given; all are recorded.
 */
export async function llServer(options: Partial<LongLinkOptions> = {}, echo = !options.onConnection): Promise<LlServer> {
  const server = http.createServer(hostHandler)
  const conns: LongLinkConnection[] = []
  const received = new Map<string, (string | Uint8Array)[]>()
  const closes = new Map<string, [number, string]>()
  const logs: LogEntry[] = []
  const logger = {
    info: (event: string, fields?: Record<string, unknown>) => logs.push({ level: 'info', event, fields }),
    warn: (event: string, fields?: Record<string, unknown>) => logs.push({ level: 'warn', event, fields }),
    error: (event: string, fields?: Record<string, unknown>) => logs.push({ level: 'error', event, fields }),
  }
  const handle = attachLongLink(server, {
    path: LL_PATH,
    logger,
    ...options,
    onConnection(conn) {
      conns.push(conn)
      received.set(conn.id, [])
      conn.on('message', (m) => received.get(conn.id)!.push(m))
      conn.on('close', (code, reason) => closes.set(conn.id, [code, reason]))
      if (echo) conn.on('message', (m) => void conn.send(m).catch(() => {}))
      options.onConnection?.(conn)
    },
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const origin = `http://127.0.0.1:${port}`
  const s: LlServer = {
    server,
    handle,
    base: origin + LL_PATH,
    wsBase: `ws://127.0.0.1:${port}${LL_PATH}`,
    origin,
    conns,
    received,
    closes,
    logs,
    async close() {
      open.delete(s)
      await handle.close()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
  open.add(s)
  return s
}

/** Closes every server {@link llServer} started (afterEach). */
export async function closeLlServers(): Promise<void> {
  await Promise.all([...open].map((s) => s.close()))
}
