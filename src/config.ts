/**
 * Where the demo backend is. On H5 the page is served by the backend itself, so its origin is the backend; the
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

declare const location: { origin?: string; protocol?: string } | undefined

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
