import type { TransportName } from '@/uni_modules/longlink-socket/js_sdk/mqtt'

/** A transport of the MQTT link. */
export type { TransportName }

/**
 * Where the demo backend is, and how the app reaches its broker. On H5 the page is served by the backend itself, so its origin is the backend; the
 * mini-program build talks to the local backend of `npm run demo` (turn off the domain check in WeChat DevTools).
 */
const LOCAL_BACKEND = 'http://127.0.0.1:8090'

/**
 * The seeded demo riders' password of a backend on this machine without `DEMO_PASSWORD` (it accepts this default on
 * loopback only): the demo's login form starts filled in with it. A demo value, not a secret.
 */
export const DEMO_PASSWORD = 'longlink-demo'

/** Storage key that points the mini-program at another backend (a LAN IP for a phone) without a rebuild. */
export const BACKEND_KEY = 'longlink:backend'

/** Storage key with the MQTT link's transports, in order (`long-polling`, or `websocket,sse,long-polling`). */
export const TRANSPORTS_KEY = 'longlink:transports'

/**
 * The demo's transports when nothing says otherwise: WebSocket, and where a network refuses it SSE, then long-polling
 * (the plugin falls back by itself and remembers the winner).
 */
export const DEFAULT_TRANSPORTS: readonly TransportName[] = ['websocket', 'sse', 'long-polling']

const TRANSPORT_NAMES: readonly TransportName[] = ['websocket', 'sse', 'long-polling', 'polling']

declare const location: { origin?: string; protocol?: string; search?: string; hash?: string } | undefined

/** The backend's HTTP origin, e.g. `http://127.0.0.1:8090`. */
export function backendOrigin(): string {
  // #ifdef H5
  if (typeof location !== 'undefined' && location && location.origin && /^https?:/.test(location.protocol || '')) return location.origin
  // #endif
  // #ifndef H5
  try {
    const custom = uni.getStorageSync(BACKEND_KEY)
    if (typeof custom === 'string' && /^https?:\/\//.test(custom)) return custom.replace(/\/$/, '')
  } catch {
    // No storage here: the local default.
  }
  // #endif
  return LOCAL_BACKEND
}

/** The broker's WebSocket URL next to the backend (`/mqtt` on the same host and port), when the backend does not say. */
export function mqttUrl(origin = backendOrigin()): string {
  return `${origin.replace(/^http/, 'ws')}/mqtt`
}

/**
 * A comma-separated list of transports (`websocket,sse,long-polling`), or undefined when `raw` is empty or names one
 * the plugin does not know (a typo must not leave the app without a link). Repeats are dropped.
 */
export function parseTransports(raw: unknown): TransportName[] | undefined {
  if (typeof raw !== 'string' || !raw.trim()) return undefined
  const list: TransportName[] = []
  for (const part of raw.split(',')) {
    const name = part.trim().toLowerCase() as TransportName
    if (!TRANSPORT_NAMES.includes(name)) return undefined
    if (!list.includes(name)) list.push(name)
  }
  return list.length ? list : undefined
}

/** `?transports=` of the H5 page's address (in the search, or in the hash route's query); none elsewhere. */
function queryTransports(): string | undefined {
  // #ifdef H5
  if (typeof location === 'undefined' || !location) return undefined
  for (const part of [location.search, location.hash]) {
    const q = part ? part.indexOf('?') : -1
    if (!part || q < 0) continue
    for (const pair of part.slice(q + 1).split('&')) {
      const [key, value = ''] = pair.split('=')
      if (key !== 'transports') continue
      try {
        return decodeURIComponent(value)
      } catch {
        return undefined
      }
    }
  }
  // #endif
  return undefined
}

/**
 * The transports of the MQTT link, first found of: the H5 page's `?transports=`, the storage key
 * {@link TRANSPORTS_KEY}, the build's `VITE_LONGLINK_TRANSPORTS`, then {@link DEFAULT_TRANSPORTS}.
 */
export function demoTransports(): TransportName[] {
  let stored: unknown
  try {
    stored = uni.getStorageSync(TRANSPORTS_KEY)
  } catch {
    // No storage here: the build's setting or the default.
  }
  const built = import.meta.env.VITE_LONGLINK_TRANSPORTS
  return parseTransports(queryTransports()) ?? parseTransports(stored) ?? parseTransports(built) ?? DEFAULT_TRANSPORTS.slice()
}
