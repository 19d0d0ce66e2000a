/**
 * `GET /admin/stats`: a JSON snapshot for scripts and monitors, and who may read it.
 */
import type { IncomingMessage } from 'node:http'
import { ApiError } from '../http/respond'
import { bearerToken, type AdminPassword } from './credential'
import type { LoginLimiter } from './login-limiter'
import type { History, Metrics } from '../metrics'
import type { LiveRates, LiveTotals } from './protocol'
import type { Refuse } from './refusal'
import { remoteAddress } from '../http/request'
import type { Sessions } from './session'

/** `GET /admin/stats`. */
export interface AdminStats {
  /** When the snapshot was taken (ms since epoch). */
  time: number
  /** Since the admin was created (the backend instance started). */
  uptimeMs: number
  /** Connections to the broker (null when unknown). */
  online: number | null
  /** Rides in progress. */
  activeRides: number
  /** Riders connected to the broker. */
  connectedRiders: number
  /** Pages watching `/admin/live`. */
  liveViewers: number
  rates: LiveRates
  totals: LiveTotals
}

export interface StatsRouteDeps {
  metrics: Metrics
  history: History
  sessions: Sessions
  password: AdminPassword
  limiter: LoginLimiter
  refuse: Refuse
  /** When the admin was created (ms since epoch). */
  startedAt: number
  /** Read fresh for each snapshot; the last sampled point stands in when it fails. */
  gauges(): { online: number | null; activeRides: number }
  connectedRiders(): number
  liveViewers(): number
}

export interface StatsRoute {
  /** Throws 401/429 unless the request carries the session cookie or the admin password as a bearer token. */
  requireAccess(req: IncomingMessage): void
  /** The snapshot now. */
  snapshot(): AdminStats
}

/** Creates the stats route. */
export function createStatsRoute(deps: StatsRouteDeps): StatsRoute {
  const { metrics, history, sessions, password, limiter, refuse } = deps

  /** The session cookie, or (for scripts) `Authorization: Bearer <adminPassword>` under the same failure limit as logins. */
  const requireAccess = (req: IncomingMessage): void => {
    if (sessions.fromRequest(req)) return
    const address = remoteAddress(req)
    const token = bearerToken(req.headers.authorization)
    if (token === undefined) {
      refuse(undefined, {})
      throw new ApiError(401, 'UNAUTHORIZED', 'sign in at /admin or send Authorization: Bearer <admin password>', { reason: 'missing' })
    }
    const wait = limiter.retryAfter(address)
    if (wait > 0) {
      refuse('admin.stats.rate_limited', { address, retryAfterMs: wait })
      throw new ApiError(429, 'RATE_LIMITED', 'too many failed attempts', { retryAfterMs: wait }, { 'retry-after': String(Math.ceil(wait / 1000)) })
    }
    if (!password.matches(token)) {
      limiter.fail(address)
      refuse('admin.stats.refused', { address, reason: 'wrong-credential' })
      throw new ApiError(401, 'UNAUTHORIZED', 'wrong admin credential', { reason: 'wrong-credential' })
    }
  }

  const snapshot = (): AdminStats => {
    const last = history.last()
    let gauges: { online: number | null; activeRides: number }
    try {
      gauges = deps.gauges()
    } catch {
      gauges = { online: last?.online ?? null, activeRides: last?.activeRides ?? 0 }
    }
    return {
      time: Date.now(),
      uptimeMs: Date.now() - deps.startedAt,
      online: gauges.online,
      activeRides: gauges.activeRides,
      connectedRiders: deps.connectedRiders(),
      liveViewers: deps.liveViewers(),
      rates: metrics.rates(),
      totals: metrics.totals(),
    }
  }

  return { requireAccess, snapshot }
}
