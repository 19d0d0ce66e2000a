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
 *
 * This file routes and wires the parts together: ./session.ts and ./credential.ts (who is signed in),
 * ./login-limiter.ts, ./login.ts (the login and logout routes), ./stats.ts, ./assets.ts (the built page),
 * ./sources.ts (what is read from the backend) and ./live.ts (the WebSocket feed).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import { ApiError, sendJson } from '../http/respond'
import type { Logger } from '../log'
import { ASSETS_PREFIX, createPageFiles } from './assets'
import { createAdminPassword } from './credential'
import { createLiveFeed } from './live'
import { createLoginRoutes } from './login'
import { ADMIN_LOGIN_FAILURES, ADMIN_LOGIN_WINDOW_MS, createLoginLimiter } from './login-limiter'
import type { Metrics } from '../metrics'
import type { ConnectedRider } from './protocol'
import { createRefusal } from './refusal'
import { allowMethods } from './request'
import { createSessions } from './session'
import { createSources } from './sources'
import { createStatsRoute } from './stats'

export { createHistory, createMetrics, type Gauges, type History, type HistoryOptions, type HistoryPoint, type Metrics } from '../metrics'
export type { ConnectedRider, LiveMessage } from './protocol'
export { ADMIN_COOKIE, ADMIN_SESSION_MS } from './session'
export { ADMIN_LOGIN_FAILURES, ADMIN_LOGIN_WINDOW_MS } from './login-limiter'
export type { AdminStats } from './stats'

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
  /** Viewers of /admin/live at once (default 64). */
  maxViewers?: number
  /** Failed logins per remote address per minute before 429 (default {@link ADMIN_LOGIN_FAILURES}). */
  loginFailuresPerMinute?: number
}

export interface Admin {
  /** Handles `/admin` and `/admin/*` (returns false for other paths). Throws ApiError for 4xx. */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean>
  /** Takes a WebSocket upgrade for `/admin/live` (checks the session cookie and the origin; answers 401/403 on the raw socket otherwise). */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void
  /** Number of live viewers. */
  liveClients(): number
  /** Stops sampling and the live feed; safe to call more than once. */
  close(): void
}

/** Creates the admin; see the file comment. Throws when `secret` is shorter than 16 bytes. */
export function createAdmin(deps: AdminDeps): Admin {
  const { logger, metrics } = deps
  if (!Buffer.isBuffer(deps.secret) || deps.secret.length < 16) throw new Error('admin secret must be a Buffer of at least 16 bytes')
  const startedAt = Date.now()
  const isAllowedOrigin = (origin: string | undefined): boolean => deps.isAllowedOrigin(origin)
  const sessions = createSessions(deps.secret)
  const password = createAdminPassword(deps.secret, deps.adminPassword)
  const limiter = createLoginLimiter(deps.loginFailuresPerMinute ?? ADMIN_LOGIN_FAILURES, ADMIN_LOGIN_WINDOW_MS)
  const refuse = createRefusal(metrics, logger)

  const sources = createSources({ logger, metrics, gauges: () => deps.gauges(), riders: () => deps.riders() })
  const live = createLiveFeed({
    logger,
    metrics,
    history: sources.history,
    riders: sources.riders,
    logs: deps.logs,
    maxPayload: deps.maxPayload ?? 4096,
    maxViewers: deps.maxViewers,
    isAllowedOrigin,
    sessionOf: (req) => sessions.fromRequest(req),
    refuse,
  })
  const loginRoutes = createLoginRoutes({ logger, password, sessions, limiter, refuse, isAllowedOrigin, onLogout: (id) => live.endSession(id) })
  const stats = createStatsRoute({
    metrics,
    history: sources.history,
    sessions,
    password,
    limiter,
    refuse,
    startedAt,
    gauges: () => deps.gauges(),
    connectedRiders: () => sources.riders().total,
    liveViewers: () => live.viewerCount(),
  })
  const pageFiles = createPageFiles({ pageDir: deps.pageDir, sessions, refuse })
  let closed = false

  return {
    async handle(req, res, url) {
      const p = url.pathname
      if (p !== '/admin' && !p.startsWith('/admin/')) return false
      const method = req.method ?? 'GET'
      if (p === '/admin' || p === '/admin/') {
        allowMethods(method, ['GET', 'HEAD'])
        await pageFiles.servePage(req, res)
      } else if (p === '/admin/login') {
        allowMethods(method, ['POST'])
        await loginRoutes.login(req, res)
      } else if (p === '/admin/logout') {
        allowMethods(method, ['POST'])
        loginRoutes.logout(req, res)
      } else if (p === '/admin/stats') {
        allowMethods(method, ['GET', 'HEAD'])
        stats.requireAccess(req)
        sendJson(res, 200, stats.snapshot())
      } else if (p === '/admin/live') {
        allowMethods(method, ['GET'])
        throw new ApiError(400, 'BAD_INPUT', '/admin/live is a WebSocket: send an upgrade request')
      } else if (p.startsWith(ASSETS_PREFIX)) {
        allowMethods(method, ['GET', 'HEAD'])
        await pageFiles.serveAsset(req, res, url)
      } else {
        allowMethods(method, ['GET', 'HEAD', 'POST'])
        throw new ApiError(404, 'NOT_FOUND', `no route ${p}`)
      }
      return true
    },

    upgrade: (req, socket, head) => live.upgrade(req, socket, head),

    liveClients: () => live.viewerCount(),

    close() {
      if (closed) return
      closed = true
      sources.history.stop()
      live.close()
    },
  }
}
