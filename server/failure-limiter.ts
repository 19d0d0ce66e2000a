/**
 * Failures counted per key (a remote address) in fixed windows, bounded in memory: what keeps a password from being
 * guessed at network speed. Used by the riders' logins and by the admin's.
 */

/** Keys remembered by a limiter; the oldest go first past this. */
const LIMITER_MAX_KEYS = 10_000

/** Failures counted per key in fixed windows. */
export interface FailureLimiter {
  /** Milliseconds until `key` may try again (0: it may now). */
  retryAfter(key: string, now?: number): number
  /** Counts one failure of `key`. */
  fail(key: string, now?: number): void
  /** Forgets the failures of `key` (after a success). */
  clear(key: string): void
}

/** Creates a limiter allowing `max` failures per key per `windowMs`; bounded in memory. */
export function createFailureLimiter(max: number, windowMs: number): FailureLimiter {
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
