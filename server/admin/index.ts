/**
 * The backend's admin: a page people read at a glance, its JSON snapshot, and the live feed behind it.
 *
 * Routes (everything else under `/admin` is a 404; a method a route does not take is a 405 with `allow`):
 * - `GET /admin`: the built page (server/admin/page → `pageDir`) with a valid session, else a small login form.
 * - `POST /admin/login`: `{password}` as JSON or a form → a signed, HttpOnly, SameSite=Strict session cookie.
 *   Failed logins are limited per remote address.
 * - `POST /admin/logout`: revokes the session and clears the cookie.
 * - `GET /admin/stats`: a JSON snapshot ({@link AdminStats}); the session cookie or `Authorization: Bearer <password>`.
 * - `GET /admin/assets/*`: the page's built files (session required).
 * - WebSocket `/admin/live` ({@link Admin.upgrade}): the feed described in ./protocol.ts.
 *
 * The page itself is built ahead of time by Vite (`npm run build:admin`); nothing is bundled at run time.
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http'
import path from 'node:path'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type RawData, type WebSocket } from 'ws'
import type { ApiErrorCode } from '../api-contract'
import { ApiError, sendJson } from '../http/respond'
import type { Logger } from '../log'
import { createHistory, type History, type Metrics } from './metrics'
import { LIVE_LOGS_PER_SECOND, LIVE_RIDERS_MAX, type ConnectedRider, type LiveRates, type LiveTotals } from './protocol'

export { createHistory, createMetrics, type Gauges, type History, type HistoryOptions, type HistoryPoint, type Metrics } from './metrics'
export type { ConnectedRider, LiveMessage } from './protocol'

export interface AdminDeps {
  logger: Logger
  metrics: Metrics
  /** Sampled every second for the history and the live feed. */
  gauges(): { online: number | null; activeRides: number }
  /** The connected riders, for the table. */
  riders(): ConnectedRider[]
  /** The recent structured log lines (already redacted, newest last) and new ones as they come. */
  logs: { recent(): Record<string, unknown>[]; subscribe(listener: (entry: Record<string, unknown>) => void): () => void }
  /** The admin credential (compare in constant time). Empty: nobody can log in. */
  adminPassword: string
  /** HMAC key for the admin session cookie (at least 16 bytes). */
  secret: Buffer
  /** Folder of the built page (`dist/build/admin`); a clear 503 page telling to run `npm run build:admin` when missing. */
  pageDir: string
  /** The origin check for `/admin/live` and for the state-changing POSTs (CSRF): true when allowed. */
  isAllowedOrigin(origin: string | undefined): boolean
  /** Largest WebSocket message accepted on /admin/live (default 4096 bytes). */
  maxPayload?: number
}

export interface Admin {
  /** Handles `/admin` and `/admin/*` (returns false for other paths). Throws ApiError for 4xx. */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean>
  /** Takes a WebSocket upgrade for `/admin/live` (checks the session cookie and the origin; answers 401/403 on the raw socket otherwise). */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void
  /** Number of live viewers. */
  liveClients(): number
  close(): void
}

/** `GET /admin/stats`. */
export interface AdminStats {
  time: number
  /** Since the admin was created (the backend instance started). */
  uptimeMs: number
  /** Connections to the broker (null when unknown). */
  online: number | null
  activeRides: number
  connectedRiders: number
  liveViewers: number
  rates: LiveRates
  totals: LiveTotals
}

/** Name of the session cookie. */
export const ADMIN_COOKIE = 'longlink_admin'
/** How long a session lasts. */
export const ADMIN_SESSION_MS = 12 * 60 * 60 * 1000
/** Failed logins (or bearer checks) per remote address per window before 429. */
export const ADMIN_LOGIN_FAILURES = 5
export const ADMIN_LOGIN_WINDOW_MS = 60_000

const LOGIN_BODY_LIMIT = 4096
const RIDERS_EVERY_MS = 2000
const LIVENESS_EVERY_MS = 30_000
const HELLO_LOGS = 100
/** A serialized log entry longer than this goes out as `{time, level, event, truncated}`. */
const LOG_ENTRY_MAX = 4096
/** Above this many bytes waiting for a viewer, ticks and log lines for it are dropped until it drains. */
const SLOW_VIEWER_BYTES = 256 * 1024
/** Above this, the viewer is cut off: its memory would otherwise grow with every second it falls behind. */
const STUCK_VIEWER_BYTES = 1024 * 1024
/** Live viewers at once; each holds a socket and up to {@link STUCK_VIEWER_BYTES} of output. */
const MAX_VIEWERS = 64
/** Addresses remembered by the login limiter; the oldest go first past this. */
const LIMITER_MAX_KEYS = 10_000
/** Revoked sessions remembered until they expire anyway. */
const REVOKED_MAX = 10_000
const ASSETS_PREFIX = '/admin/assets/'

const ASSET_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.txt': 'text/plain; charset=utf-8',
}

/** Headers of every HTML answer: the page loads only its own files and can be framed by nobody. */
const HTML_HEADERS: Record<string, string> = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; " +
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  // Not `no-referrer`: with it a browser sends `Origin: null` on the form's POST, and the CSRF check could not tell.
  'referrer-policy': 'same-origin',
}

const noop = (): void => {}

/** Counts failures per key in fixed windows; bounded in memory. */
function createLimiter(max: number, windowMs: number) {
  const entries = new Map<string, { count: number; resetAt: number }>()
  const current = (key: string, now: number) => {
    const e = entries.get(key)
    if (e && e.resetAt <= now) {
      entries.delete(key)
      return undefined
    }
    return e
  }
  return {
    /** Milliseconds until `key` may try again (0: it may now). */
    retryAfter(key: string, now = Date.now()): number {
      const e = current(key, now)
      return e && e.count >= max ? e.resetAt - now : 0
    },
    fail(key: string, now = Date.now()): void {
      const e = current(key, now)
      if (e) return void e.count++
      if (entries.size >= LIMITER_MAX_KEYS) {
        for (const [k, v] of entries) if (v.resetAt <= now) entries.delete(k)
        // Still full: forget the oldest (Map keeps insertion order), never grow without bound.
        for (const k of entries.keys()) {
          if (entries.size < LIMITER_MAX_KEYS) break
          entries.delete(k)
        }
      }
      entries.set(key, { count: 1, resetAt: now + windowMs })
    },
    clear(key: string): void {
      entries.delete(key)
    },
  }
}

/** The value of every cookie named `name` in a Cookie header (a browser may send several with different paths). */
function cookieValues(header: string | undefined, name: string): string[] {
  if (!header) return []
  const out: string[] = []
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) out.push(part.slice(eq + 1).trim())
  }
  return out
}

function bearer(header: string | undefined): string | undefined {
  // Everything after the scheme: an admin password may hold spaces.
  const m = header ? /^Bearer\s+(.*?)\s*$/i.exec(header) : null
  return m && m[1] !== '' ? m[1] : undefined
}

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

const PAGE_STYLE = `
  :root { color-scheme: light; }
  body { margin: 0; min-height: 100vh; display: grid; place-items: center; background: #f4f6f9; color: #1b2430;
    font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "PingFang SC", "Microsoft YaHei", "WenQuanYi Micro Hei", sans-serif; }
  main { width: min(22rem, calc(100vw - 2rem)); background: #fff; border: 1px solid #e3e8ef; border-radius: 12px; padding: 1.75rem;
    box-shadow: 0 1px 2px rgba(16, 24, 40, .06); }
  h1 { font-size: 1.2rem; margin: 0 0 .25rem; }
  p { margin: .25rem 0 1rem; color: #5b6675; }
  label { display: block; font-size: .85rem; color: #5b6675; margin-bottom: .35rem; }
  input { box-sizing: border-box; width: 100%; font: inherit; padding: .6rem .75rem; border: 1px solid #cfd6df; border-radius: 8px; }
  input:focus { outline: 2px solid #2f6fed; outline-offset: 1px; border-color: #2f6fed; }
  button { margin-top: 1rem; width: 100%; font: inherit; font-weight: 600; padding: .6rem; border: 0; border-radius: 8px;
    background: #2f6fed; color: #fff; cursor: pointer; }
  .error { color: #b42318; background: #fef3f2; border: 1px solid #fecdca; border-radius: 8px; padding: .5rem .75rem; }
  code { background: #eef1f5; padding: .1rem .35rem; border-radius: 4px; }`

function htmlDocument(title: string, body: string): string {
  return `<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>${escapeHtml(title)}</title>
<style>${PAGE_STYLE}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`
}

function loginPage(message?: string): string {
  return htmlDocument(
    'LongLink 管理登录 · Admin sign-in',
    `<h1>LongLink 管理 · Admin</h1>
<p>请输入管理密码 · Enter the admin password</p>
${message ? `<p class="error" role="alert" data-test="login-error">${escapeHtml(message)}</p>` : ''}
<form method="post" action="/admin/login" data-test="login-form">
  <label for="password">密码 · Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required autofocus>
  <button type="submit">登录 · Sign in</button>
</form>`,
  )
}

const NOT_BUILT_PAGE = htmlDocument(
  'LongLink 管理 · Admin not built',
  `<h1>管理页面尚未构建 · The admin page is not built</h1>
<p>请运行 · Run <code>npm run build:admin</code>，然后刷新 · then reload.</p>`,
)

function sendHtml(res: ServerResponse, status: number, html: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...HTML_HEADERS, 'content-length': String(Buffer.byteLength(html)), ...headers })
  res.end(html)
}

/** Throws a 405 unless `method` is one of `allowed`. */
function allow(method: string, allowed: string[]): void {
  if (!allowed.includes(method)) {
    throw new ApiError(405, 'METHOD_NOT_ALLOWED', `use ${allowed.join(' or ')}`, undefined, { allow: allowed.join(', ') })
  }
}

/** Reads at most `limit` bytes of body; past that, a 413 (the rest is discarded and the connection closed). */
function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const tooLarge = () => new ApiError(413, 'BODY_TOO_LARGE', `the body is over ${limit} bytes`, { limit }, { connection: 'close' })
  const declared = Number(req.headers['content-length'])
  if (Number.isFinite(declared) && declared > limit) {
    req.resume()
    return Promise.reject(tooLarge())
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const cleanup = () => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
      req.off('aborted', onError)
    }
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) {
        cleanup()
        req.resume()
        return reject(tooLarge())
      }
      chunks.push(chunk)
    }
    const onEnd = () => {
      cleanup()
      resolve(Buffer.concat(chunks).toString('utf8'))
    }
    const onError = () => {
      cleanup()
      reject(new ApiError(400, 'BAD_INPUT', 'the body did not arrive'))
    }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
    req.on('aborted', onError)
  })
}

const mediaType = (req: IncomingMessage): string => (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase()
const isFormPost = (req: IncomingMessage): boolean => mediaType(req) === 'application/x-www-form-urlencoded'

/** The password of a login body: JSON `{password}` or a form's `password=`. */
function parsePassword(req: IncomingMessage, body: string): string {
  const type = mediaType(req)
  if (type === 'application/x-www-form-urlencoded') {
    const password = new URLSearchParams(body).get('password')
    if (password === null) throw new ApiError(400, 'BAD_INPUT', 'password is required')
    return password
  }
  if (type === 'application/json') {
    let parsed: unknown
    try {
      parsed = JSON.parse(body)
    } catch {
      throw new ApiError(400, 'BAD_INPUT', 'the body is not JSON')
    }
    const password = parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as { password?: unknown }).password : undefined
    if (typeof password !== 'string') throw new ApiError(400, 'BAD_INPUT', 'password (a string) is required')
    return password
  }
  throw new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', 'send JSON {"password": …} or a form with password=')
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

interface Session {
  id: string
  expiresAt: number
}

interface Viewer {
  ws: WebSocket
  session: string
  /** Log lines sent in the current second. */
  logs: number
  /** Log lines not sent since the last `log-dropped`. */
  logsDropped: number
  /** Seen alive since the last liveness round. */
  alive: boolean
}

/** Creates the admin; see the file comment. Throws when `secret` is shorter than 16 bytes. */
export function createAdmin(deps: AdminDeps): Admin {
  const { logger, metrics } = deps
  if (!Buffer.isBuffer(deps.secret) || deps.secret.length < 16) throw new Error('admin secret must be a Buffer of at least 16 bytes')
  const secret = deps.secret
  const maxPayload = deps.maxPayload ?? 4096
  const startedAt = Date.now()
  const limiter = createLimiter(ADMIN_LOGIN_FAILURES, ADMIN_LOGIN_WINDOW_MS)
  const revoked = new Map<string, number>()
  const viewers = new Set<Viewer>()
  let closed = false

  // Both sides hashed with a keyed hash: equal lengths for timingSafeEqual, and the length of the password leaks nothing.
  const passwordDigest = (s: string): Buffer => crypto.createHmac('sha256', secret).update('admin-password\0').update(s, 'utf8').digest()
  const expectedPassword = passwordDigest(deps.adminPassword)
  const passwordMatches = (given: string): boolean => deps.adminPassword.length > 0 && crypto.timingSafeEqual(passwordDigest(given), expectedPassword)

  // Sessions: `v1.<expiresAt>.<id>.<hmac>`, stateless but for the (bounded) list of sessions logged out early.
  const sign = (payload: string): Buffer => crypto.createHmac('sha256', secret).update('admin-session\0').update(payload).digest()
  const issueSession = (): Session & { value: string } => {
    const id = crypto.randomBytes(16).toString('base64url')
    const expiresAt = Date.now() + ADMIN_SESSION_MS
    const payload = `v1.${expiresAt}.${id}`
    return { id, expiresAt, value: `${payload}.${sign(payload).toString('base64url')}` }
  }
  const verifySession = (value: string): Session | undefined => {
    const parts = value.split('.')
    if (parts.length !== 4 || parts[0] !== 'v1' || !/^\d{1,15}$/.test(parts[1])) return undefined
    const given = Buffer.from(parts[3], 'base64url')
    const expected = sign(parts.slice(0, 3).join('.'))
    if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) return undefined
    const expiresAt = Number(parts[1])
    const now = Date.now()
    if (expiresAt <= now || expiresAt > now + ADMIN_SESSION_MS + 60_000 || revoked.has(parts[2])) return undefined
    return { id: parts[2], expiresAt }
  }
  const sessionOf = (req: IncomingMessage): Session | undefined => {
    for (const value of cookieValues(req.headers.cookie, ADMIN_COOKIE)) {
      const s = verifySession(value)
      if (s) return s
    }
    return undefined
  }
  const revoke = (s: Session): void => {
    const now = Date.now()
    if (revoked.size >= REVOKED_MAX) {
      for (const [id, exp] of revoked) if (exp <= now) revoked.delete(id)
      for (const id of revoked.keys()) {
        if (revoked.size < REVOKED_MAX) break
        revoked.delete(id)
      }
    }
    revoked.set(s.id, s.expiresAt)
  }
  const cookie = (req: IncomingMessage, value: string, maxAgeSeconds: number): string => {
    const secure = (req.socket as { encrypted?: boolean }).encrypted || req.headers['x-forwarded-proto'] === 'https' ? '; Secure' : ''
    return `${ADMIN_COOKIE}=${value}; Max-Age=${maxAgeSeconds}; Path=/admin; HttpOnly; SameSite=Strict${secure}`
  }

  const addressOf = (req: IncomingMessage): string => req.socket.remoteAddress ?? 'unknown'

  /** Every refusal is counted (the refusals chart); the security-relevant ones are also logged, never with a secret. */
  const refusal = (event: string | undefined, fields: Record<string, unknown>): void => {
    metrics.countRefusal()
    if (event) logger.warn(event, fields)
  }

  /** A refusal for the login form (HTML, same status) or for a script (ApiError, JSON). */
  const refuseLogin = (
    res: ServerResponse,
    form: boolean,
    status: number,
    code: ApiErrorCode,
    message: string,
    details?: Record<string, unknown>,
    headers?: Record<string, string>,
  ): void => {
    if (!form) throw new ApiError(status, code, message, details, headers)
    sendHtml(res, status, loginPage(message), headers)
  }

  const checkOrigin = (req: IncomingMessage, res: ServerResponse, form: boolean, what: string): boolean => {
    if (deps.isAllowedOrigin(req.headers.origin)) return true
    refusal('admin.origin.refused', { what, origin: req.headers.origin ?? null, address: addressOf(req) })
    refuseLogin(res, form, 403, 'FORBIDDEN', '来源不被允许 · Origin not allowed')
    return false
  }

  // --- history and live feed -------------------------------------------------------------------------------------

  let gaugeErrorLogged = false
  const history: History = createHistory({
    metrics,
    gauges: () => {
      const g = deps.gauges()
      gaugeErrorLogged = false
      return g
    },
    onGaugeError: (err) => {
      // Once per failure streak: a broken gauge must not write a line a second.
      if (!gaugeErrorLogged) logger.error('admin.gauges.failed', { error: err })
      gaugeErrorLogged = true
    },
  })
  // Sampling runs whether anyone watches or not: a viewer who opens the page sees the last hour.
  history.start()

  let ridersErrorLogged = false
  const ridersSnapshot = (): { riders: ConnectedRider[]; total: number } => {
    let all: ConnectedRider[]
    try {
      all = deps.riders()
      ridersErrorLogged = false
    } catch (err) {
      // Once per failure streak, like the gauges.
      if (!ridersErrorLogged) logger.error('admin.riders.failed', { error: err })
      ridersErrorLogged = true
      all = []
    }
    return { riders: all.length > LIVE_RIDERS_MAX ? all.slice(0, LIVE_RIDERS_MAX) : all, total: all.length }
  }

  /** Cuts a viewer off when its output keeps piling up; true when it was. */
  const cutIfStuck = (v: Viewer): boolean => {
    if (v.ws.bufferedAmount <= STUCK_VIEWER_BYTES) return false
    const bufferedBytes = v.ws.bufferedAmount
    v.ws.terminate()
    // Logged on the next turn: the line goes to the live feed, which may be iterating the viewers right now.
    setImmediate(() => logger.warn('admin.live.slow_viewer', { bufferedBytes }))
    return true
  }
  /** Sends unless the viewer is closed or stuck. Returns whether the text was queued. */
  const send = (v: Viewer, text: string): boolean => {
    if (v.ws.readyState !== v.ws.OPEN || cutIfStuck(v)) return false
    v.ws.send(text)
    return true
  }
  const isSlow = (v: Viewer): boolean => v.ws.bufferedAmount > SLOW_VIEWER_BYTES

  const broadcast = (text: string): void => {
    for (const v of viewers) {
      // A slow viewer misses this message (a gap in its charts) instead of piling it up in memory.
      if (isSlow(v)) cutIfStuck(v)
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
    const { riders, total } = ridersSnapshot()
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

  const unsubscribeLogs = deps.logs.subscribe((entry) => {
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
    const { riders, total } = ridersSnapshot()
    let recent: Record<string, unknown>[]
    try {
      recent = deps.logs.recent()
    } catch {
      recent = []
    }
    const logs = recent.slice(-HELLO_LOGS).map(entryJson).join(',')
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
    return `${JSON.stringify(head).slice(0, -1)},"logs":[${logs}]}`
  }

  const wss = new WebSocketServer({ noServer: true, maxPayload, clientTracking: false, perMessageDeflate: false })

  const onViewer = (ws: WebSocket, session: Session, req: IncomingMessage): void => {
    // Logged before the viewer joins: the line reaches it inside `hello`, not as a stray `log` ahead of it.
    logger.info('admin.live.opened', { address: addressOf(req), viewers: viewers.size + 1 })
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

  /** Answers an upgrade request with an HTTP error on the raw socket and closes it. */
  const rejectUpgrade = (socket: Duplex, status: number, code: ApiErrorCode, message: string): void => {
    const body = JSON.stringify({ error: { code, status, message } })
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\n` +
        `cache-control: no-store\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    )
  }

  // --- HTTP routes -------------------------------------------------------------------------------------------------

  const servePage = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (!sessionOf(req)) return sendHtml(res, 200, loginPage())
    let html: string
    try {
      html = await fs.promises.readFile(path.join(deps.pageDir, 'index.html'), 'utf8')
    } catch {
      return sendHtml(res, 503, NOT_BUILT_PAGE)
    }
    sendHtml(res, 200, html)
  }

  const login = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const form = isFormPost(req)
    const address = addressOf(req)
    if (!checkOrigin(req, res, form, 'login')) return void req.resume()
    if (deps.adminPassword.length === 0) {
      req.resume()
      refusal('admin.login.refused', { address, reason: 'not-configured' })
      return refuseLogin(res, form, 403, 'FORBIDDEN', '未配置管理密码 · Admin login is not configured')
    }
    const wait = limiter.retryAfter(address)
    if (wait > 0) {
      req.resume()
      const seconds = Math.ceil(wait / 1000)
      refusal('admin.login.rate_limited', { address, retryAfterMs: wait })
      return refuseLogin(
        res,
        form,
        429,
        'RATE_LIMITED',
        `尝试次数过多，请 ${seconds} 秒后再试 · Too many attempts, try again in ${seconds} s`,
        {
          retryAfterMs: wait,
        },
        { 'retry-after': String(seconds) },
      )
    }
    const password = parsePassword(req, await readBody(req, LOGIN_BODY_LIMIT))
    if (!passwordMatches(password)) {
      limiter.fail(address)
      refusal('admin.login.refused', { address, reason: 'wrong-password' })
      return refuseLogin(res, form, 401, 'UNAUTHORIZED', '密码错误 · Wrong password', { reason: 'wrong-password' })
    }
    limiter.clear(address)
    const session = issueSession()
    logger.info('admin.login', { address })
    const setCookie = cookie(req, session.value, Math.floor(ADMIN_SESSION_MS / 1000))
    if (form) {
      res.writeHead(303, { location: '/admin', 'set-cookie': setCookie, 'cache-control': 'no-store', 'content-length': '0' })
      return void res.end()
    }
    sendJson(res, 200, { ok: true, expiresAt: session.expiresAt }, { 'set-cookie': setCookie })
  }

  const logout = (req: IncomingMessage, res: ServerResponse): void => {
    req.resume()
    const form = isFormPost(req)
    if (!checkOrigin(req, res, form, 'logout')) return
    const session = sessionOf(req)
    if (session) {
      revoke(session)
      // The feeds of this session stop too: the page is no longer signed in.
      for (const v of viewers) if (v.session === session.id) v.ws.close(4001, 'logged out')
      logger.info('admin.logout', { address: addressOf(req) })
    }
    const clear = cookie(req, '', 0)
    if (form) {
      res.writeHead(303, { location: '/admin', 'set-cookie': clear, 'cache-control': 'no-store', 'content-length': '0' })
      return void res.end()
    }
    sendJson(res, 200, { ok: true }, { 'set-cookie': clear })
  }

  /** The session cookie, or (for scripts) `Authorization: Bearer <adminPassword>` under the same failure limit as logins. */
  const requireStatsAccess = (req: IncomingMessage): void => {
    if (sessionOf(req)) return
    const address = addressOf(req)
    const token = bearer(req.headers.authorization)
    if (token === undefined) {
      refusal(undefined, {})
      throw new ApiError(401, 'UNAUTHORIZED', 'sign in at /admin or send Authorization: Bearer <admin password>', { reason: 'missing' })
    }
    const wait = limiter.retryAfter(address)
    if (wait > 0) {
      refusal('admin.stats.rate_limited', { address, retryAfterMs: wait })
      throw new ApiError(429, 'RATE_LIMITED', 'too many failed attempts', { retryAfterMs: wait }, { 'retry-after': String(Math.ceil(wait / 1000)) })
    }
    if (!passwordMatches(token)) {
      limiter.fail(address)
      refusal('admin.stats.refused', { address, reason: 'wrong-credential' })
      throw new ApiError(401, 'UNAUTHORIZED', 'wrong admin credential', { reason: 'wrong-credential' })
    }
  }

  const stats = (): AdminStats => {
    const last = history.last()
    let gauges: { online: number | null; activeRides: number }
    try {
      gauges = deps.gauges()
    } catch {
      gauges = { online: last?.online ?? null, activeRides: last?.activeRides ?? 0 }
    }
    return {
      time: Date.now(),
      uptimeMs: Date.now() - startedAt,
      online: gauges.online,
      activeRides: gauges.activeRides,
      connectedRiders: ridersSnapshot().total,
      liveViewers: viewers.size,
      rates: metrics.rates(),
      totals: metrics.totals(),
    }
  }

  const serveAsset = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    if (!sessionOf(req)) {
      refusal(undefined, {})
      throw new ApiError(401, 'UNAUTHORIZED', 'sign in at /admin first', { reason: 'missing' })
    }
    let rel: string
    try {
      rel = decodeURIComponent(url.pathname.slice(ASSETS_PREFIX.length))
    } catch {
      throw new ApiError(400, 'BAD_INPUT', 'bad path')
    }
    // Backslashes and NULs have no business in an asset name; `..` is caught by the containment check below.
    if (rel === '' || rel.includes('\0') || rel.includes('\\')) throw new ApiError(404, 'NOT_FOUND', 'no such file')
    const root = path.resolve(deps.pageDir, 'assets')
    const file = path.resolve(root, rel)
    if (!file.startsWith(root + path.sep)) throw new ApiError(404, 'NOT_FOUND', 'no such file')
    const stat = await fs.promises.stat(file).catch(() => undefined)
    if (!stat?.isFile()) throw new ApiError(404, 'NOT_FOUND', 'no such file')
    res.writeHead(200, {
      'content-type': ASSET_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
      'content-length': String(stat.size),
      // Vite puts a content hash in every asset name: a file's content never changes under the same URL.
      'cache-control': 'private, max-age=31536000, immutable',
      'x-content-type-options': 'nosniff',
    })
    if (req.method === 'HEAD') return void res.end()
    await new Promise<void>((resolve) => {
      const stream = fs.createReadStream(file)
      stream.on('error', () => {
        res.destroy()
        resolve()
      })
      res.on('close', () => {
        stream.destroy()
        resolve()
      })
      stream.pipe(res)
    })
  }

  return {
    async handle(req, res, url) {
      const p = url.pathname
      if (p !== '/admin' && !p.startsWith('/admin/')) return false
      const method = req.method ?? 'GET'
      if (p === '/admin' || p === '/admin/') {
        allow(method, ['GET', 'HEAD'])
        await servePage(req, res)
      } else if (p === '/admin/login') {
        allow(method, ['POST'])
        await login(req, res)
      } else if (p === '/admin/logout') {
        allow(method, ['POST'])
        logout(req, res)
      } else if (p === '/admin/stats') {
        allow(method, ['GET', 'HEAD'])
        requireStatsAccess(req)
        sendJson(res, 200, stats())
      } else if (p === '/admin/live') {
        allow(method, ['GET'])
        throw new ApiError(400, 'BAD_INPUT', '/admin/live is a WebSocket: send an upgrade request')
      } else if (p.startsWith(ASSETS_PREFIX)) {
        allow(method, ['GET', 'HEAD'])
        await serveAsset(req, res, url)
      } else {
        allow(method, ['GET', 'HEAD', 'POST'])
        throw new ApiError(404, 'NOT_FOUND', `no route ${p}`)
      }
      return true
    },

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
        refusal('admin.live.refused', { reason: 'origin', origin: req.headers.origin ?? null, address: addressOf(req) })
        return rejectUpgrade(socket, 403, 'FORBIDDEN', 'origin not allowed')
      }
      const session = sessionOf(req)
      if (!session) {
        refusal('admin.live.refused', { reason: 'no-session', address: addressOf(req) })
        return rejectUpgrade(socket, 401, 'UNAUTHORIZED', 'sign in at /admin first')
      }
      if (viewers.size >= MAX_VIEWERS) return rejectUpgrade(socket, 503, 'UNAVAILABLE', 'too many live viewers')
      wss.handleUpgrade(req, socket, head, (ws) => onViewer(ws, session, req))
    },

    liveClients: () => viewers.size,

    close() {
      if (closed) return
      closed = true
      history.stop()
      clearInterval(ridersTimer)
      clearInterval(livenessTimer)
      unsubscribeLogs()
      for (const v of viewers) v.ws.terminate()
      viewers.clear()
      wss.close()
    },
  }
}
