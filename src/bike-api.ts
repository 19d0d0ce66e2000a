/** The demo backend's bike service over uni.request: login, reserve, unlock, lock. */
import { backendOrigin } from './config'

/** A failed call, with the backend's error code (UNAUTHORIZED, BIKE_BUSY, …) or NETWORK when there was no answer. */
export class BikeApiError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
  ) {
    super(message)
    this.name = 'BikeApiError'
  }
}

export interface Session {
  rider: string
  token: string
  expiresAt: number
}

/** The ride summary as the backend sends it (one definition, shared with the server). */
export type { RideSummary } from '@/server/bikes'
import type { RideSummary } from '@/server/bikes'

function call<T>(method: 'GET' | 'POST', path: string, body?: unknown, token?: string): Promise<T> {
  return new Promise((resolve, reject) => {
    uni.request({
      url: `${backendOrigin()}${path}`,
      method,
      data: body as never,
      header: { 'content-type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      success: (res) => {
        const data = res.data as { error?: { code: string; message: string } } & T
        if (res.statusCode >= 200 && res.statusCode < 300) resolve(data)
        else reject(new BikeApiError(data?.error?.code ?? 'HTTP_ERROR', res.statusCode, data?.error?.message ?? `HTTP ${res.statusCode}`))
      },
      fail: (err) => reject(new BikeApiError('NETWORK', 0, err.errMsg || 'network error')),
    })
  })
}

/** Where the app's MQTT client should connect: the embedded broker, or the external one of `BROKER_URL`. */
export function brokerConfig(): Promise<{ mqttUrl: string }> {
  return call<{ mqttUrl: string }>('GET', '/api/config')
}

/** Logs in as a demo rider; the token also logs the MQTT client in. */
export function login(rider: string): Promise<Session> {
  return call<Session>('POST', '/api/login', { rider })
}

/** Holds the bike for this rider, so it may subscribe to the bike's unlock topic before asking for the unlock. */
export function reserve(session: Session, bike: string): Promise<unknown> {
  return call('POST', `/api/bikes/${encodeURIComponent(bike)}/reserve`, {}, session.token)
}

/** Asks for the unlock; the result arrives on `mobike/unlocked/<bike>`. */
export function unlock(session: Session, bike: string): Promise<unknown> {
  return call('POST', `/api/bikes/${encodeURIComponent(bike)}/unlock`, {}, session.token)
}

/** Locks the bike; the summary also arrives on `mobike/locked/<bike>`. */
export function lock(session: Session, bike: string): Promise<RideSummary> {
  return call<RideSummary>('POST', `/api/bikes/${encodeURIComponent(bike)}/lock`, {}, session.token)
}
