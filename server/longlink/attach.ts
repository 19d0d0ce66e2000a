/**
 * `attachLongLink`: serves the path on an HTTP(S) server. Like engine.io's attach, it takes over the server's
 * `request` and `upgrade` listeners, handles its own path and hands every other request to them; `close()` puts them
 * back as they were. With `listen: false` it hooks nothing and the host calls `handleRequest` / `handleUpgrade`.
 */
import type http from 'node:http'
import type https from 'node:https'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import { Core } from './core'
import { handleHttp } from './http-handler'
import { resolveOptions, type LongLinkOptions } from './options'
import { handleUpgradeAt } from './upgrade'

export interface LongLinkHandle {
  /**
   * Ends every connection (each emits `close` with 1001 `server closing`; session clients get that close item on
   * their carrier), closes the WebSockets, and detaches from the server without closing it. Requests at the path
   * that still arrive (through `handleRequest`) get 503 `CLOSING`.
   */
  close(): Promise<void>
  /** Connections held now: sessions and plain WebSockets (what the session limits count). */
  sessions(): number
  /** Serves `req` when its path is the LongLink path (returns true); false otherwise, untouched. */
  handleRequest(req: IncomingMessage, res: ServerResponse): boolean
  /**
   * Takes an upgrade at the LongLink path (returns true); false for another path, or for a WebSocket without `sid`
   * when `plainWebSocket` is false.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean
}

type Server = http.Server | https.Server
type Listener = (...args: unknown[]) => void

/** The query of `url` when its path is `path`, else undefined. Never throws. */
function queryAt(url: string | undefined, path: string): URLSearchParams | undefined {
  if (!url || url[0] !== '/') return undefined
  const hash = url.indexOf('#')
  const target = hash < 0 ? url : url.slice(0, hash)
  const q = target.indexOf('?')
  if ((q < 0 ? target : target.slice(0, q)) !== path) return undefined
  return new URLSearchParams(q < 0 ? '' : target.slice(q + 1))
}

/**
 * Puts `own` in front of the server's `event` listeners: `own` returns true when it took the event, else the
 * listeners it replaced are called. Returns what restores the listeners (ones added meanwhile are kept, in place).
 */
function hook(server: Server, event: 'request' | 'upgrade', own: (...args: unknown[]) => boolean, fallback: Listener): () => void {
  const previous = server.rawListeners(event) as Listener[]
  server.removeAllListeners(event)
  const listener: Listener = (...args) => {
    if (own(...args)) return
    if (previous.length === 0) return fallback(...args)
    for (const l of previous) l.apply(server, args)
  }
  server.on(event, listener)
  return () => {
    const now = server.rawListeners(event) as Listener[]
    server.removeAllListeners(event)
    for (const l of now) {
      if (l === listener) for (const p of previous) server.on(event, p)
      else server.on(event, l)
    }
  }
}

/** Nobody else serves it: what Node does without listeners, as closely as a hooked server can. */
function notFound(_req: unknown, res: unknown): void {
  const r = res as ServerResponse
  r.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' })
  r.end('Not Found')
}

function dropUpgrade(_req: unknown, socket: unknown): void {
  ;(socket as Duplex).destroy()
}

/** Serves LongLink at `options.path` on `server`; see {@link LongLinkHandle} and the module README. */
export function attachLongLink(server: Server, options: LongLinkOptions): LongLinkHandle {
  const resolved = resolveOptions(options)
  const core = new Core(resolved)
  const { path } = resolved

  const handleRequest = (req: IncomingMessage, res: ServerResponse): boolean => {
    const query = queryAt(req.url, path)
    if (!query) return false
    handleHttp(core, req, res, query)
    return true
  }
  const handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): boolean => {
    const query = queryAt(req.url, path)
    if (!query || (!resolved.plainWebSocket && !query.has('sid'))) return false
    handleUpgradeAt(core, req, socket, head, query)
    return true
  }

  const unhook: (() => void)[] = []
  if (resolved.listen) {
    unhook.push(hook(server, 'request', (req, res) => handleRequest(req as IncomingMessage, res as ServerResponse), notFound))
    unhook.push(hook(server, 'upgrade', (req, socket, head) => handleUpgrade(req as IncomingMessage, socket as Duplex, head as Buffer), dropUpgrade))
  }

  let closed: Promise<void> | undefined
  return {
    handleRequest,
    handleUpgrade,
    sessions: () => core.registry.size,
    close() {
      closed ??= (async () => {
        core.closing = true
        for (const restore of unhook.splice(0)) restore()
        core.liveness.stop()
        for (const session of [...core.registry.sessions.values()]) session.shutdown()
        for (const control of [...core.plain]) control.end(1001, 'server closing')
        const sockets = core.liveness.sockets()
        for (const ws of sockets) if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(1001, 'server closing')
        // A peer that does not answer the close handshake is cut after a short grace.
        const deadline = Date.now() + 1000
        while (core.liveness.sockets().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
        for (const ws of core.liveness.sockets()) ws.terminate()
        await new Promise<void>((resolve) => core.wss.close(() => resolve()))
      })()
      return closed
    },
  }
}
