/**
 * The HTTP requests at the path (docs/session-protocol.md, "Requests"): open a session, poll or stream down, POST up.
 * Every malformed query or body is answered with its 4xx JSON before anything is applied; a client that hangs up
 * mid-body is let go; nothing here throws out to the server.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { remoteAddressOf, type Core } from './core'
import { badRequest, HttpError, sendHttpError, sendJson } from './errors'
import { PollCarrier, SseCarrier } from './http-carriers'
import { parsePacketText } from './packet'
import { queryCounter, lastParam } from './query'
import { SID_PATTERN, type Session } from './session'

const HTTP_TRANSPORTS = new Set(['sse', 'long-polling', 'polling'])
type HttpTransport = 'sse' | 'long-polling' | 'polling'

/** The client hung up before its request was read: nobody to answer. */
class Gone extends Error {}

function transportOf(query: URLSearchParams): HttpTransport {
  const t = lastParam(query, 'transport')
  if (t === null || !HTTP_TRANSPORTS.has(t)) throw badRequest('"transport" must be sse, long-polling or polling')
  return t as HttpTransport
}

/** The live session a request names; throws 400 (bad sid) or 410. */
function sessionOf(core: Core, query: URLSearchParams): Session {
  const sid = lastParam(query, 'sid')!
  if (!SID_PATTERN.test(sid)) throw badRequest('"sid" is malformed')
  const session = core.session(sid)
  if (!session) throw new HttpError(410, 'SESSION_GONE', 'unknown, expired or closed session')
  return session
}

/** Reads at most `limit` bytes; throws 413 past it (the connection is closed after the answer), Gone when cut. */
function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const tooLarge = (): HttpError => new HttpError(413, 'TOO_LARGE', `the body is over ${limit} bytes`, { connection: 'close' })
  const declared = Number(req.headers['content-length'])
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(tooLarge())
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const cleanup = (): void => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onCut)
      req.off('close', onCut)
    }
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size > limit) {
        cleanup()
        return reject(tooLarge())
      }
      chunks.push(chunk)
    }
    const onEnd = (): void => {
      cleanup()
      resolve(Buffer.concat(chunks).toString('utf8'))
    }
    const onCut = (): void => {
      cleanup()
      reject(new Gone())
    }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onCut)
    req.on('close', onCut)
  })
}

async function open(core: Core, req: IncomingMessage, res: ServerResponse, query: URLSearchParams, headers: Record<string, string>): Promise<void> {
  const transport = transportOf(query)
  if (lastParam(query, 'open') !== '1') throw badRequest('"open" must be 1')
  if (query.has('sid')) throw badRequest('"open" and "sid" do not go together')
  const address = remoteAddressOf(req)
  const key = await core.authorize(req, address)
  core.admit(key)
  if (res.destroyed) return
  const session = core.openSession(transport, address, key)
  const { node, hold, maxStreamMs, maxRequestBytes, idleMs } = core.options
  sendJson(res, 200, { sid: session.sid, node, hold, maxStreamMs, maxRequestBytes, idleMs }, headers)
}

function down(core: Core, req: IncomingMessage, res: ServerResponse, query: URLSearchParams, headers: Record<string, string>): void {
  const transport = transportOf(query)
  const session = sessionOf(core, query)
  const c = queryCounter(query, 'c', 1)
  // Without `ack`, the messages after the last one acknowledged are sent.
  const ack = queryCounter(query, 'ack', 0, 0)
  if (ack > session.lastSent) throw badRequest('"ack" is beyond the messages sent')
  if (session.isStale(c)) throw new HttpError(409, 'STALE', 'a newer carrier is in use')
  session.ack(ack)
  if (session.ended) throw new HttpError(410, 'SESSION_GONE', 'the session is closed')
  if (transport === 'sse') {
    const carrier = new SseCarrier(session, ack)
    session.claim(c, carrier)
    carrier.start(req, res, core.options, headers)
  } else {
    const carrier = new PollCarrier(transport, session, res, ack, headers)
    // The first poll of a carrier run is answered at once: it proves the carrier works, so the client can call the link
    // open without waiting out a hold.
    const first = c > session.topCarrier
    session.claim(c, carrier)
    carrier.start(first ? 0 : core.options.hold)
  }
}

async function up(core: Core, req: IncomingMessage, res: ServerResponse, query: URLSearchParams, headers: Record<string, string>): Promise<void> {
  transportOf(query)
  const session = sessionOf(core, query)
  session.begin()
  try {
    const packet = parsePacketText(await readBody(req, core.options.maxRequestBytes))
    if (typeof packet === 'string') throw badRequest(packet)
    if (session.ended) throw new HttpError(410, 'SESSION_GONE', 'the session is closed')
    const problem = session.receive(packet)
    if (problem) throw badRequest(problem)
    sendJson(res, 200, { ack: session.clientCursor }, headers)
  } finally {
    session.done()
  }
}

async function serve(core: Core, req: IncomingMessage, res: ServerResponse, query: URLSearchParams, headers: Record<string, string>): Promise<void> {
  if (core.closing) throw new HttpError(503, 'CLOSING', 'the server is closing')
  if (req.method === 'OPTIONS') {
    res.writeHead(204, headers)
    return void res.end()
  }
  if (req.method !== 'GET' && req.method !== 'POST') {
    throw new HttpError(405, 'METHOD_NOT_ALLOWED', 'only GET and POST', { allow: 'GET, POST, OPTIONS' })
  }
  if (req.method === 'POST') {
    if (!query.has('sid')) throw badRequest('a POST needs "sid"')
    return up(core, req, res, query, headers)
  }
  if (query.has('open')) return open(core, req, res, query, headers)
  if (!query.has('sid')) throw badRequest('"open=1" or "sid" is needed')
  down(core, req, res, query, headers)
}

/** The CORS headers of a request (with the preflight's when `cors` is set); a throwing `cors` adds none. */
function corsHeaders(core: Core, req: IncomingMessage): Record<string, string> {
  const { cors } = core.options
  if (!cors) return {}
  try {
    const origin = typeof req.headers.origin === 'string' ? req.headers.origin : undefined
    const extra = cors(origin)
    if (req.method !== 'OPTIONS') return { ...extra }
    return {
      'access-control-allow-methods': 'GET, POST, OPTIONS',
      // What the client asks for (its auth hook's headers among them); the host's `cors` may narrow it.
      'access-control-allow-headers':
        typeof req.headers['access-control-request-headers'] === 'string'
          ? req.headers['access-control-request-headers'].slice(0, 1000)
          : 'authorization, content-type, last-event-id',
      'access-control-max-age': '600',
      ...extra,
    }
  } catch (err) {
    core.options.logger.error('longlink.cors_error', { error: err })
    return {}
  }
}

/** Serves a request at the path; every failure becomes an answer (or, for a client that is gone, nothing). */
export function handleHttp(core: Core, req: IncomingMessage, res: ServerResponse, query: URLSearchParams): void {
  const headers = corsHeaders(core, req)
  // A write racing the socket's end must not become an unhandled 'error'.
  res.on('error', () => {})
  const fail = (err: unknown): void => {
    if (err instanceof Gone) return void res.destroy()
    if (err instanceof HttpError) {
      sendHttpError(res, err, headers)
      // An unread body (a refused POST) is discarded; after a 413 the connection closes instead.
      if (!req.complete && err.status !== 413) req.resume()
      return
    }
    core.options.logger.error('longlink.request_error', { method: req.method, error: err, stack: (err as Error)?.stack })
    if (res.headersSent) return void res.destroy()
    sendHttpError(res, new HttpError(500, 'INTERNAL', 'internal error'), headers)
  }
  serve(core, req, res, query, headers).catch(fail)
}
