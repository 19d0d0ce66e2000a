/**
 * A loopback HTTP proxy that is sticky the LongLink way (docs/session-protocol.md §3): a request or upgrade whose
 * query has `sid` goes to the backend named by the sid's node prefix (the part before the first `.`); one without
 * `sid` goes to the backends in turn. A sid naming no known node is answered 502 `UNKNOWN_NODE` (JSON; on the raw
 * socket for an upgrade). Bounded: a deadline per upstream request, at most `maxConnections` client connections, and
 * close() ends the listener and every socket.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import net from 'node:net'
import type { Duplex } from 'node:stream'

export interface StickyProxy {
  readonly port: number
  /** `http://127.0.0.1:port` */
  readonly origin: string
  /** How many requests and upgrades went to each node so far. */
  routed(): Map<string, number>
  close(): Promise<void>
}

export interface StickyProxyOptions {
  /** Deadline of one upstream request or idle upgraded connection (ms, default 30 000). */
  timeoutMs?: number
  maxConnections?: number
}

type Route = { node: string; port: number } | { error: string }

/** Starts the proxy in front of `backends` (node name → port on 127.0.0.1). */
export async function startStickyProxy(backends: Record<string, number>, opts: StickyProxyOptions = {}): Promise<StickyProxy> {
  const timeoutMs = opts.timeoutMs ?? 30_000
  const nodes = Object.keys(backends)
  const routed = new Map<string, number>()
  const sockets = new Set<net.Socket | Duplex>()
  const agent = new http.Agent({ keepAlive: false })
  let next = 0

  const track = (socket: net.Socket | Duplex): void => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    socket.on('error', () => {})
  }

  const route = (url: string | undefined): Route => {
    const q = (url ?? '').indexOf('?')
    const sid = q < 0 ? null : new URLSearchParams((url ?? '').slice(q + 1)).get('sid')
    let node: string
    if (sid === null) node = nodes[next++ % nodes.length]
    else {
      const dot = sid.indexOf('.')
      node = dot < 0 ? sid : sid.slice(0, dot)
      if (!Object.prototype.hasOwnProperty.call(backends, node)) return { error: 'the sid names no known node' }
    }
    routed.set(node, (routed.get(node) ?? 0) + 1)
    return { node, port: backends[node] }
  }

  const refuse = (res: ServerResponse, status: number, error: string, message: string): void => {
    if (res.headersSent) return void res.destroy()
    const body = JSON.stringify({ error, message })
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(body)) })
    res.end(body)
  }

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const target = route(req.url)
    if ('error' in target) {
      req.resume()
      return refuse(res, 502, 'UNKNOWN_NODE', target.error)
    }
    const upstream = http.request({ host: '127.0.0.1', port: target.port, method: req.method, path: req.url, headers: req.headers, agent })
    upstream.setTimeout(timeoutMs, () => upstream.destroy(new Error('upstream timeout')))
    upstream.on('response', (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers)
      // SSE and held polls: bytes go on as they come, never buffered here.
      res.flushHeaders()
      up.pipe(res)
      up.on('error', () => res.destroy())
    })
    upstream.on('error', () => refuse(res, 502, 'UPSTREAM', 'the backend did not answer'))
    // The client went away: so does the upstream request (a held poll, a stream).
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy()
    })
    req.pipe(upstream)
  }

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    track(socket)
    const target = route(req.url)
    if ('error' in target) {
      const body = JSON.stringify({ error: 'UNKNOWN_NODE', message: target.error })
      socket.end(
        `HTTP/1.1 502 Bad Gateway\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      )
      return
    }
    const upstream = net.connect(target.port, '127.0.0.1')
    track(upstream)
    upstream.setTimeout(timeoutMs, () => upstream.destroy())
    upstream.once('connect', () => {
      let head0 = `${req.method} ${req.url} HTTP/1.1\r\n`
      for (let i = 0; i < req.rawHeaders.length; i += 2) head0 += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`
      upstream.write(head0 + '\r\n')
      if (head.length > 0) upstream.write(head)
      upstream.pipe(socket)
      socket.pipe(upstream)
    })
    upstream.once('close', () => socket.destroy())
    socket.once('close', () => upstream.destroy())
  }

  const server = http.createServer(onRequest)
  server.on('upgrade', onUpgrade)
  server.on('connection', track)
  server.maxConnections = opts.maxConnections ?? 1000

  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port))
  })
  return {
    port,
    origin: `http://127.0.0.1:${port}`,
    routed: () => new Map(routed),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        for (const s of sockets) s.destroy()
        agent.destroy()
      }),
  }
}
