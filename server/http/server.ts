/**
 * The HTTP server in front of everything, built so that no input can end the process: every request and upgrade is
 * parsed inside a handler; what cannot be parsed is answered 400, oversized request lines and headers 431, slow ones
 * 408 (Node's own `headersTimeout` / `requestTimeout`, set from the limits), and an unexpected exception in a handler
 * is a logged 500. One `http.access` log line per request.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import type net from 'node:net'
import type { Duplex } from 'node:stream'
import type { Limits } from '../config'
import type { LogLimiter, Logger } from '../log'
import { parseTarget, remoteAddress, type Target } from './request'
import { ApiError, sendError, sendJson } from './respond'

export interface HttpServerDeps {
  limits: Limits
  logger: Logger
  /** Bounded log for errors a client can cause at will (malformed requests). */
  noisy: LogLimiter
  /** CORS headers for a request's origin. */
  cors(origin: string | undefined): Record<string, string>
  /**
   * Serves a request entirely (a path mounted by another module, with its own CORS and OPTIONS answers); true when it
   * did. Asked before anything is set on the response.
   */
  takeover?(req: IncomingMessage, res: ServerResponse, target: Target): boolean
  /** Answers a request; throws ApiError for 4xx. */
  handle(req: IncomingMessage, res: ServerResponse, target: Target): Promise<void>
  /** Takes an upgrade; must answer or destroy the socket. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, target: Target): void
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  503: 'Service Unavailable',
}

/** Answers on a raw socket (upgrades and client errors) with a small JSON error and closes it. */
export function rejectSocket(socket: Duplex, status: number, code: string, message: string): void {
  if (!socket.writable || socket.destroyed) return void socket.destroy()
  const body = JSON.stringify({ error: { code, status, message } })
  socket.end(
    `HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  )
  // A peer that never reads must not keep the socket: give the answer a moment, then drop it.
  setTimeout(() => socket.destroy(), 1000).unref()
}

/** Errors that mean a dependency (the database) is down or busy, not a bug: answered 503. */
export function isUnavailable(err: unknown): boolean {
  const code = String((err as { code?: unknown })?.code ?? '')
  return /^(ECONNREFUSED|ETIMEDOUT|57P0[1-3]|53300|SQLITE_BUSY|SQLITE_LOCKED|SQLITE_CANTOPEN|SQLITE_IOERR.*)$/.test(code) || /^08/.test(code)
}

export function createHttpServer(deps: HttpServerDeps): http.Server & { closeAll(): void } {
  const { limits, logger } = deps
  const sockets = new Set<net.Socket>()

  const server = http.createServer(
    {
      maxHeaderSize: limits.httpMaxHeaderBytes,
      headersTimeout: limits.httpHeadersTimeoutMs,
      requestTimeout: limits.httpRequestTimeoutMs,
      keepAliveTimeout: limits.httpKeepAliveTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, limits.httpHeadersTimeoutMs),
    },
    (req, res) => {
      const started = performance.now()
      // Read now: once a body stream is destroyed (a `for await` left early), Node sets `req.socket` to null.
      const address = remoteAddress(req)
      const target = parseTarget(req.url)
      res.on('close', () => {
        logger.info('http.access', {
          method: req.method,
          path: target ? target.pathname.slice(0, 200) : '(bad target)',
          status: res.statusCode,
          ms: Math.round((performance.now() - started) * 10) / 10,
          address,
          ...(!res.writableFinished && { aborted: true }),
        })
      })
      try {
        if (target && deps.takeover?.(req, res, target)) return
      } catch (err) {
        logger.error('http.error', { method: req.method, path: target!.pathname.slice(0, 200), error: err, stack: (err as Error)?.stack })
        if (res.headersSent) return void res.destroy()
        return sendJson(res, 500, { error: { code: 'INTERNAL', status: 500, message: 'internal error' } })
      }
      const origin = typeof req.headers.origin === 'string' ? req.headers.origin : undefined
      for (const [k, v] of Object.entries(deps.cors(origin))) res.setHeader(k, v)
      if (!target) return sendError(res, new ApiError(400, 'BAD_INPUT', 'the request target must be a path'))
      if (req.method === 'OPTIONS') {
        res.writeHead(204, {
          'access-control-allow-methods': 'GET, POST, OPTIONS',
          'access-control-allow-headers': 'authorization, content-type, last-event-id',
          'access-control-max-age': '600',
        })
        return void res.end()
      }
      deps.handle(req, res, target).catch((err: unknown) => {
        if (res.headersSent) return void res.destroy()
        if (err instanceof ApiError) return sendError(res, err)
        // The client hung up (or was timed out) mid-request: nobody to answer, and not a server error.
        if (req.destroyed || (err as NodeJS.ErrnoException)?.code === 'ECONNRESET') return void res.destroy()
        if (isUnavailable(err)) {
          deps.noisy.warn('http.unavailable', { path: target.pathname.slice(0, 200), error: err })
          return sendError(
            res,
            new ApiError(503, 'UNAVAILABLE', 'the database is not reachable; try again shortly', undefined, { 'retry-after': '5' }),
          )
        }
        logger.error('http.error', { method: req.method, path: target.pathname.slice(0, 200), error: err, stack: (err as Error)?.stack })
        sendJson(res, 500, { error: { code: 'INTERNAL', status: 500, message: 'internal error' } })
      })
    },
  )

  server.on('connection', (sock) => {
    sockets.add(sock)
    sock.once('close', () => sockets.delete(sock))
  })
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {})
    try {
      const target = parseTarget(req.url)
      if (!target) return rejectSocket(socket, 400, 'BAD_INPUT', 'the request target must be a path')
      deps.upgrade(req, socket, head, target)
    } catch (err) {
      logger.error('http.upgrade_error', { path: String(req.url).slice(0, 200), error: err, stack: (err as Error)?.stack })
      socket.destroy()
    }
  })
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400
    const code = status === 431 ? 'HEADERS_TOO_LARGE' : status === 408 ? 'REQUEST_TIMEOUT' : 'BAD_INPUT'
    deps.noisy.warn('http.client_error', { code: err.code, status })
    if (err.code === 'ECONNRESET') return void socket.destroy()
    rejectSocket(
      socket,
      status,
      code,
      status === 431 ? 'request line or headers too large' : status === 408 ? 'request took too long' : 'malformed request',
    )
  })
  server.on('error', (err) => logger.error('http.server_error', { error: err }))

  return Object.assign(server, {
    closeAll() {
      for (const s of sockets) s.destroy()
    },
  })
}
