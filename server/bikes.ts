/**
 * The bike service: rider login, reservations, unlock and lock, over HTTP JSON, publishing the lock events to MQTT.
 *
 * Routes (JSON in and out; errors are `{ error: { code, status, message } }`):
 * - `POST /api/login {rider}` → 200 `{token, expiresAt, rider}`; demo riders are any id matching /^[a-z0-9_-]{1,32}$/i.
 * - `POST /api/bikes/:id/reserve` → 200 `{bike, status:'reserved', expiresAt}`: holds the bike for this rider.
 * - `POST /api/bikes/:id/unlock` → 202 `{bike, status:'unlocking'}`; after `unlockDelayMs` the service publishes
 *   `mobike/unlocked/<id>` (QoS 1) `{bike, rider, time}` and the ride starts.
 * - `POST /api/bikes/:id/lock` → 200 summary; publishes `mobike/locked/<id>` (QoS 1)
 *   `{bike, rider, startedAt, endedAt, durationMs, fare}` and ends the ride.
 * - `GET /api/rides/active` → 200 `{rides:[{bike, status, reservedUntil?, startedAt?}]}` of the caller.
 * - `GET /api/config` → 200 `{mqttUrl}` (where the app should connect).
 * Every bike route needs `Authorization: Bearer <token>`. Codes: 400 BAD_INPUT, 401 UNAUTHORIZED (`reason`:
 * missing / malformed / bad-signature / expired), 404 RIDE_NOT_FOUND / NOT_FOUND, 409 BIKE_BUSY / RIDER_BUSY.
 *
 * **ACL rule (subscribe before unlock).** The app subscribes to `mobike/unlocked/<id>` *before* it asks for the
 * unlock, so a rider may subscribe to `mobike/unlocked/<id>` while it *holds* the bike: an unexpired reservation
 * (`POST /reserve`, which the app calls first), an unlock in progress, or a ride. `mobike/locked/<id>` needs an unlock
 * in progress or a ride. A bike is held by at most one rider and a rider holds at most one bike, so no rider can
 * watch another rider's bike. Subscribing to a merely free bike is not allowed (it would let anyone watch the next
 * rider's unlock). Unlocking a free bike without reserving still works (the hold starts at the unlock).
 *
 * All state is in memory: a restart forgets every reservation and ride (tokens stay valid: they are signed).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { BackendConfig } from './config'
import { ApiError, readJson, sendJson } from './http'
import type { Logger } from './log'
import type { TokenService } from './tokens'

export const RIDER_ID = /^[a-z0-9_-]{1,32}$/i
export const BIKE_ID = /^[A-Za-z0-9_-]{1,32}$/

/** Where the service publishes (the embedded broker directly, or an MQTT client of an external broker). */
export interface Bus {
  publish(topic: string, payload: Record<string, unknown>, qos: 0 | 1): Promise<void>
}

export type HoldStatus = 'reserved' | 'unlocking' | 'riding'

export interface Hold {
  bike: string
  rider: string
  status: HoldStatus
  reservedUntil?: number
  startedAt?: number
  timer?: NodeJS.Timeout
}

export interface RideView {
  bike: string
  rider: string
  status: HoldStatus
  reservedUntil?: number
  startedAt?: number
}

export interface RideSummary {
  bike: string
  rider: string
  startedAt: number
  endedAt: number
  durationMs: number
  fare: number
}

export interface BikeService {
  login(rider: unknown): { token: string; expiresAt: number; rider: string }
  reserve(rider: string, bike: string): { bike: string; status: 'reserved'; expiresAt: number }
  unlock(rider: string, bike: string): { bike: string; status: 'unlocking' }
  lock(rider: string, bike: string): Promise<RideSummary>
  activeRides(rider?: string): RideView[]
  /** Rides unlocking or under way (reservations excluded). */
  activeRideCount(): number
  /** The ACL: may `rider` subscribe to `filter`? */
  canSubscribe(rider: string, filter: string): boolean
  /** Handles `/api/*`; returns false for other paths. */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean>
  /** Called on every change of the active ride count. */
  onChange(listener: () => void): void
  close(): void
}

export interface BikeServiceDeps {
  config: Pick<BackendConfig, 'tokenTtlMs' | 'unlockDelayMs' | 'reserveTtlMs' | 'farePerMinute'>
  tokens: TokenService
  bus: Bus
  logger: Logger
  /** URL the app should use for MQTT, given the request (for `GET /api/config`). */
  mqttUrl(req: IncomingMessage): string
  now?: () => number
  /** Where reservations and rides are kept; shared across restarts of one backend. */
  holds?: Map<string, Hold>
}

export function fareFor(durationMs: number, farePerMinute: number): number {
  const minutes = Math.max(1, Math.ceil(durationMs / 60_000))
  return Math.round(minutes * farePerMinute * 100) / 100
}

export function createBikeService(deps: BikeServiceDeps): BikeService {
  const { config, tokens, bus, logger } = deps
  const now = deps.now ?? Date.now
  // Holds live outside the service when the backend passes them in, so a restart of the HTTP server and the broker
  // keeps every reservation and ride (a rider restarting mid-ride can still lock).
  const byBike = deps.holds ?? new Map<string, Hold>()
  const listeners: (() => void)[] = []
  let closed = false
  const changed = (): void => listeners.forEach((l) => l())

  const live = (hold: Hold | undefined): Hold | undefined => {
    if (hold && hold.status === 'reserved' && (hold.reservedUntil ?? 0) <= now()) {
      byBike.delete(hold.bike)
      return undefined
    }
    return hold
  }
  const holdOf = (bike: string): Hold | undefined => live(byBike.get(bike))
  const holdsOfRider = (rider: string): Hold[] => [...byBike.values()].filter((h) => h.rider === rider && live(h))
  const view = (h: Hold): RideView => ({
    bike: h.bike,
    rider: h.rider,
    status: h.status,
    ...(h.reservedUntil !== undefined && h.status === 'reserved' && { reservedUntil: h.reservedUntil }),
    ...(h.startedAt !== undefined && { startedAt: h.startedAt }),
  })

  const checkBike = (bike: string): void => {
    if (!BIKE_ID.test(bike)) throw new ApiError(400, 'BAD_INPUT', 'bike id must match /^[A-Za-z0-9_-]{1,32}$/')
  }
  /** The rider may hold `bike`: throws 409 when another rider holds it or this rider holds another bike. */
  const claim = (rider: string, bike: string): Hold | undefined => {
    const hold = holdOf(bike)
    if (hold && hold.rider !== rider) throw new ApiError(409, 'BIKE_BUSY', `bike ${bike} is in use`)
    const other = holdsOfRider(rider).find((h) => h.bike !== bike)
    if (other && other.status !== 'reserved') throw new ApiError(409, 'RIDER_BUSY', `rider already has bike ${other.bike}`, { bike: other.bike })
    if (other) byBike.delete(other.bike) // a new reservation replaces an old one
    return hold
  }

  const service: BikeService = {
    login(rider) {
      if (typeof rider !== 'string' || !RIDER_ID.test(rider)) throw new ApiError(400, 'BAD_INPUT', 'rider must match /^[a-z0-9_-]{1,32}$/i')
      const issued = tokens.issue(rider, config.tokenTtlMs)
      logger.info('rider.login', { rider, expiresAt: issued.expiresAt })
      return { ...issued, rider }
    },

    reserve(rider, bike) {
      checkBike(bike)
      const hold = claim(rider, bike)
      if (hold && hold.status !== 'reserved') throw new ApiError(409, 'BIKE_BUSY', `bike ${bike} is already ${hold.status}`)
      const expiresAt = now() + config.reserveTtlMs
      byBike.set(bike, { bike, rider, status: 'reserved', reservedUntil: expiresAt })
      logger.info('bike.reserved', { rider, bike, expiresAt })
      return { bike, status: 'reserved', expiresAt }
    },

    unlock(rider, bike) {
      checkBike(bike)
      const existing = claim(rider, bike)
      if (existing && existing.status !== 'reserved') throw new ApiError(409, 'BIKE_BUSY', `bike ${bike} is already ${existing.status}`)
      const hold: Hold = { bike, rider, status: 'unlocking' }
      byBike.set(bike, hold)
      hold.timer = setTimeout(() => {
        hold.timer = undefined
        if (closed || byBike.get(bike) !== hold) return
        const time = now()
        hold.status = 'riding'
        hold.startedAt = time
        changed()
        bus.publish(`mobike/unlocked/${bike}`, { bike, rider, time }, 1).then(
          () => logger.info('bike.unlocked', { rider, bike }),
          (err: unknown) => logger.error('publish.failed', { topic: `mobike/unlocked/${bike}`, error: err }),
        )
      }, config.unlockDelayMs)
      logger.info('bike.unlocking', { rider, bike, delayMs: config.unlockDelayMs })
      changed()
      return { bike, status: 'unlocking' }
    },

    async lock(rider, bike) {
      checkBike(bike)
      const hold = holdOf(bike)
      if (!hold || hold.rider !== rider || hold.status === 'reserved') throw new ApiError(404, 'RIDE_NOT_FOUND', `no ride of yours on bike ${bike}`)
      if (hold.status === 'unlocking') throw new ApiError(409, 'BIKE_BUSY', `bike ${bike} is still unlocking`)
      byBike.delete(bike)
      const endedAt = now()
      const startedAt = hold.startedAt ?? endedAt
      const durationMs = endedAt - startedAt
      const summary: RideSummary = { bike, rider, startedAt, endedAt, durationMs, fare: fareFor(durationMs, config.farePerMinute) }
      changed()
      await bus.publish(`mobike/locked/${bike}`, { ...summary }, 1)
      logger.info('bike.locked', { rider, bike, durationMs, fare: summary.fare })
      return summary
    },

    activeRides(rider) {
      return [...byBike.values()].filter((h) => live(h) && (rider === undefined || h.rider === rider)).map(view)
    },

    activeRideCount() {
      let n = 0
      for (const h of byBike.values()) if (h.status !== 'reserved') n++
      return n
    },

    canSubscribe(rider, filter) {
      const m = /^mobike\/(unlocked|locked)\/([^/]+)$/.exec(filter)
      if (!m || !BIKE_ID.test(m[2])) return false
      const hold = holdOf(m[2])
      if (!hold || hold.rider !== rider) return false
      return m[1] === 'unlocked' ? true : hold.status !== 'reserved'
    },

    async handle(req, res, url) {
      const p = url.pathname
      if (!p.startsWith('/api/')) return false
      const method = req.method ?? 'GET'
      const needMethod = (m: string): void => {
        if (method !== m) throw new ApiError(405, 'METHOD_NOT_ALLOWED', `use ${m} for ${p}`)
      }
      const rider = (): string => {
        const header = String(req.headers.authorization ?? '')
        const m = /^Bearer\s+(\S+)$/i.exec(header)
        if (!m) throw new ApiError(401, 'UNAUTHORIZED', 'missing bearer token', { reason: 'missing' })
        const result = tokens.verify(m[1])
        if (!result.ok) {
          logger.warn('http.refused', { path: p, reason: result.reason })
          throw new ApiError(401, 'UNAUTHORIZED', `token ${result.reason}`, { reason: result.reason })
        }
        return result.riderId
      }

      if (p === '/api/login') {
        needMethod('POST')
        const body = await readJson(req)
        sendJson(res, 200, service.login(body.rider))
        return true
      }
      if (p === '/api/config') {
        needMethod('GET')
        sendJson(res, 200, { mqttUrl: deps.mqttUrl(req) })
        return true
      }
      if (p === '/api/rides/active') {
        needMethod('GET')
        sendJson(res, 200, { rides: service.activeRides(rider()) })
        return true
      }
      const m = /^\/api\/bikes\/([^/]+)\/(reserve|unlock|lock)$/.exec(p)
      if (m) {
        needMethod('POST')
        const who = rider()
        let bike: string
        try {
          bike = decodeURIComponent(m[1])
        } catch {
          throw new ApiError(400, 'BAD_INPUT', 'bad bike id')
        }
        if (m[2] === 'reserve') sendJson(res, 200, service.reserve(who, bike))
        else if (m[2] === 'unlock') sendJson(res, 202, service.unlock(who, bike))
        else sendJson(res, 200, await service.lock(who, bike))
        return true
      }
      throw new ApiError(404, 'NOT_FOUND', `no route ${method} ${p}`)
    },

    onChange(listener) {
      listeners.push(listener)
    },

    close() {
      closed = true
      for (const h of byBike.values()) if (h.timer) clearTimeout(h.timer)
      if (!deps.holds) return byBike.clear()
      // Shared holds outlive this service: reservations and rides stay; an unlock cut short by the restart is
      // dropped (its message can no longer be sent) and the rider simply asks again.
      for (const [bike, h] of byBike) if (h.status === 'unlocking') byBike.delete(bike)
    },
  }
  return service
}
