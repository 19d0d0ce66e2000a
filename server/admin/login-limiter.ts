/**
 * The limit on failed logins (and failed bearer checks of `/admin/stats`) per remote address, so the admin
 * password cannot be guessed at network speed.
 */

/** Failed logins (or bearer checks) per remote address per window before 429. */
export const ADMIN_LOGIN_FAILURES = 5
/** Length of the fixed window in which {@link ADMIN_LOGIN_FAILURES} are counted. */
export const ADMIN_LOGIN_WINDOW_MS = 60_000

/** Addresses remembered by the login limiter; the oldest go first past this. */
const LIMITER_MAX_KEYS = 10_000

/** Failures counted per key in fixed windows. */
export interface LoginLimiter {
  /** Milliseconds until `key` may try again (0: it may now). */
  retryAfter(key: string, now?: number): number
  /** Counts one failure of `key`. */
  fail(key: string, now?: number): void
  /** Forgets the failures of `key` (after a success). */
  clear(key: string): void
}

/** Creates a limiter allowing `max` failures per key per `windowMs`; bounded in memory. */
export function createLoginLimiter(max: number, windowMs: number): LoginLimiter {
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
