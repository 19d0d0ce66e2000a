/**
 * WebSocket `/admin/live`: the feed behind the page (the messages are described in ./protocol.ts).
 *
 * A `hello` on connect, then a `tick` every second, `riders` every 2 s and each new log line within a per-second
 * budget. Viewers that fall behind miss messages, viewers that fall far behind are cut off, and viewers that
 * vanished without a close are found by a WebSocket ping every 30 s.
 */
import { STATUS_CODES, type IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type RawData, type WebSocket } from 'ws'
import type { ApiErrorCode } from '../api-contract'
import type { Logger } from '../log'
import type { History, Metrics } from '../metrics'
import { LIVE_LOGS_PER_SECOND } from './protocol'
import type { Refuse } from './refusal'
import { remoteAddress } from '../http/request'
import type { Session } from './session'
import type { RidersSnapshot } from './sources'
import { cutIfStuck, isSlow, sendTo, type Viewer } from './viewer'

const RIDERS_EVERY_MS = 2000
const LIVENESS_EVERY_MS = 30_000
/** Log lines a new viewer gets in its `hello`. */
const HELLO_LOGS = 100
/** A serialized log entry longer than this goes out as `{time, level, event, truncated}`. */
const LOG_ENTRY_MAX = 4096
/** Live viewers at once by default; each holds a socket and up to a megabyte of output (the stuck limit in ./viewer.ts). */
const MAX_VIEWERS = 64

const noop = (): void => {}

export interface LiveFeedDeps {
  logger: Logger
  metrics: Metrics
  /** Already sampling; each new point becomes a `tick`. */
  history: History
  riders(): RidersSnapshot
  /** The recent structured log lines (already redacted, newest last) and new ones as they come. */
  logs: { recent(): Record<string, unknown>[]; subscribe(listener: (entry: Record<string, unknown>) => void): () => void }
  /** Largest WebSocket message accepted from a viewer. */
  maxPayload: number
  /** Viewers at once (default 64); the next upgrade gets 503. */
  maxViewers?: number
  /** The origin check of the upgrade: true when allowed. */
  isAllowedOrigin(origin: string | undefined): boolean
  /** The session of the upgrade request, if it carries a valid one. */
  sessionOf(req: IncomingMessage): Session | undefined
  refuse: Refuse
}

export interface LiveFeed {
  /** Takes a WebSocket upgrade for `/admin/live`; answers 4xx/503 on the raw socket when it cannot. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void
  /** Number of live viewers. */
  viewerCount(): number
  /** Closes (4001) the feeds opened with the session `sessionId`. */
  endSession(sessionId: string): void
  /** Stops the timers and cuts every viewer; later upgrades get a 503. */
  close(): void
}

/** A log entry as JSON text, or a short stand-in when it is too large or cannot be serialized. */
function entryJson(entry: Record<string, unknown>): string {
  let text: string | undefined
  try {
    text = JSON.stringify(entry)
  } catch {
    text = undefined
  }
  if (text !== undefined && text.length <= LOG_ENTRY_MAX) return text
  const short = (v: unknown) => (typeof v === 'string' ? v.slice(0, 200) : undefined)
  return JSON.stringify({ time: short(entry.time), level: short(entry.level), event: short(entry.event), truncated: true })
}

/** Answers an upgrade request with an HTTP error on the raw socket and closes it. */
function rejectUpgrade(socket: Duplex, status: number, code: ApiErrorCode, message: string): void {
  const body = JSON.stringify({ error: { code, status, message } })
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\n` +
      `cache-control: no-store\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  )
  // An upgraded socket has no timeouts: a peer that never closes its side must not keep it (and its address slot).
  setTimeout(() => socket.destroy(), 1000).unref()
}

/** Creates the feed and starts its timers (they do nothing while nobody watches). */
export function createLiveFeed(deps: LiveFeedDeps): LiveFeed {
  const { logger, metrics, history, logs } = deps
  const viewers = new Set<Viewer>()
  let closed = false

  const send = (v: Viewer, text: string): boolean => sendTo(v, text, logger)

  const broadcast = (text: string): void => {
    for (const v of viewers) {
      // A slow viewer misses this message (a gap in its charts) instead of piling it up in memory.
      if (isSlow(v)) cutIfStuck(v, logger)
      else send(v, text)
    }
  }

  history.onSample((point) => {
    if (viewers.size === 0) return
    broadcast(JSON.stringify({ type: 'tick', point, totals: metrics.totals(), rates: metrics.rates() }))
    for (const v of viewers) {
      v.logs = 0
      if (v.logsDropped > 0 && !isSlow(v) && send(v, `{"type":"log-dropped","count":${v.logsDropped}}`)) v.logsDropped = 0
    }
  })

  const ridersTimer = setInterval(() => {
    if (viewers.size === 0) return
    const { riders, total } = deps.riders()
    broadcast(JSON.stringify({ type: 'riders', now: Date.now(), riders, total }))
  }, RIDERS_EVERY_MS)
  ridersTimer.unref()

  // Viewers that vanished without a close (a laptop lid) answer no WebSocket ping: cut them after one silent round.
  const livenessTimer = setInterval(() => {
    for (const v of viewers) {
      if (!v.alive) {
        v.ws.terminate()
        continue
      }
      v.alive = false
      try {
        v.ws.ping()
      } catch {
        v.ws.terminate()
      }
    }
  }, LIVENESS_EVERY_MS)
  livenessTimer.unref()

  const unsubscribeLogs = logs.subscribe((entry) => {
    if (viewers.size === 0) return
    let text: string | undefined
    for (const v of viewers) {
      if (v.logs >= LIVE_LOGS_PER_SECOND || isSlow(v)) {
        v.logsDropped++
        continue
      }
      text ??= `{"type":"log","entry":${entryJson(entry)}}`
      v.logs++
      send(v, text)
    }
  })

  const hello = (): string => {
    const { riders, total } = deps.riders()
    let recent: Record<string, unknown>[]
    try {
      recent = logs.recent()
    } catch {
      recent = []
    }
    const lines = recent.slice(-HELLO_LOGS).map(entryJson).join(',')
    const head = {
      type: 'hello',
      now: Date.now(),
      intervalMs: 1000,
      capacity: history.capacity,
      history: history.points(),
      riders,
      ridersTotal: total,
      totals: metrics.totals(),
      rates: metrics.rates(),
    }
    // The log lines are already JSON text (each one size-checked): splice them in rather than parse them back.
    return `${JSON.stringify(head).slice(0, -1)},"logs":[${lines}]}`
  }

  const wss = new WebSocketServer({ noServer: true, maxPayload: deps.maxPayload, clientTracking: false, perMessageDeflate: false })

  const onViewer = (ws: WebSocket, session: Session, req: IncomingMessage): void => {
    // Logged before the viewer joins: the line reaches it inside `hello`, not as a stray `log` ahead of it.
    logger.info('admin.live.opened', { address: remoteAddress(req), viewers: viewers.size + 1 })
    const v: Viewer = { ws, session: session.id, logs: 0, logsDropped: 0, alive: true }
    viewers.add(v)
    // `ws` reports an oversized frame (closed with 1009) or a protocol error as 'error' before 'close': nothing to do.
    ws.on('error', noop)
    ws.on('pong', () => {
      v.alive = true
    })
    ws.on('message', (data: RawData, isBinary: boolean) => {
      v.alive = true
      // The LongLink heartbeat; anything else a viewer says is ignored.
      if (!isBinary && Buffer.isBuffer(data) && data.length === 4 && data.toString('latin1') === 'ping') send(v, 'pong')
    })
    ws.on('close', (code: number) => {
      viewers.delete(v)
      logger.info('admin.live.closed', { code, viewers: viewers.size })
    })
    send(v, hello())
  }

  return {
    upgrade(req, socket, head) {
      socket.on('error', noop)
      let pathname: string
      try {
        pathname = new URL(req.url ?? '/', 'http://localhost').pathname
      } catch {
        return rejectUpgrade(socket, 400, 'BAD_INPUT', 'bad request target')
      }
      if (pathname !== '/admin/live') return rejectUpgrade(socket, 404, 'NOT_FOUND', `no WebSocket at ${pathname}`)
      if (closed) return rejectUpgrade(socket, 503, 'UNAVAILABLE', 'the admin is closing')
      if (!deps.isAllowedOrigin(req.headers.origin)) {
        deps.refuse('admin.live.refused', { reason: 'origin', origin: req.headers.origin ?? null, address: remoteAddress(req) })
        return rejectUpgrade(socket, 403, 'FORBIDDEN', 'origin not allowed')
      }
      const session = deps.sessionOf(req)
      if (!session) {
        deps.refuse('admin.live.refused', { reason: 'no-session', address: remoteAddress(req) })
        return rejectUpgrade(socket, 401, 'UNAUTHORIZED', 'sign in at /admin first')
      }
      if (viewers.size >= (deps.maxViewers ?? MAX_VIEWERS)) return rejectUpgrade(socket, 503, 'UNAVAILABLE', 'too many live viewers')
      wss.handleUpgrade(req, socket, head, (ws) => onViewer(ws, session, req))
    },

    viewerCount: () => viewers.size,

    endSession(sessionId) {
      for (const v of viewers) if (v.session === sessionId) v.ws.close(4001, 'logged out')
    },

    close() {
      if (closed) return
      closed = true
      clearInterval(ridersTimer)
      clearInterval(livenessTimer)
      unsubscribeLogs()
      for (const v of viewers) v.ws.terminate()
      viewers.clear()
      wss.close()
    },
  }
}
