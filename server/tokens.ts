/**
 * Rider tokens: `base64url(JSON {sub, exp}) + '.' + base64url(HMAC-SHA256(secret, firstPart))`.
 * Stateless; they survive a backend restart as long as the secret does (it lives in the config).
 */
import { createHmac, timingSafeEqual } from 'node:crypto'

export type TokenFailure = 'expired' | 'bad-signature' | 'malformed'
export type VerifyResult = { ok: true; riderId: string; expiresAt: number } | { ok: false; reason: TokenFailure }

export interface IssuedToken {
  token: string
  expiresAt: number
}

export interface TokenService {
  issue(riderId: string, ttlMs: number): IssuedToken
  verify(token: unknown): VerifyResult
}

/** Shape of every token this module issues (also used by the log redactor). */
export const TOKEN_PATTERN = /[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{43}/g

export function createTokenService(secret: Buffer | string, now: () => number = Date.now): TokenService {
  const key = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret
  if (key.length === 0) throw new Error('token secret must not be empty')
  const sign = (body: string): Buffer => createHmac('sha256', key).update(body).digest()

  return {
    issue(riderId, ttlMs) {
      if (typeof riderId !== 'string' || riderId.length === 0) throw new TypeError('riderId must be a non-empty string')
      if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new TypeError('ttlMs must be a positive number')
      const expiresAt = now() + Math.floor(ttlMs)
      const body = Buffer.from(JSON.stringify({ sub: riderId, exp: expiresAt }), 'utf8').toString('base64url')
      return { token: `${body}.${sign(body).toString('base64url')}`, expiresAt }
    },
    verify(token) {
      if (typeof token !== 'string' || token.length > 4096) return { ok: false, reason: 'malformed' }
      const parts = token.split('.')
      if (parts.length !== 2 || !/^[A-Za-z0-9_-]+$/.test(parts[0]) || !/^[A-Za-z0-9_-]+$/.test(parts[1])) {
        return { ok: false, reason: 'malformed' }
      }
      const [body, sig] = parts
      const given = Buffer.from(sig, 'base64url')
      const expected = sign(body)
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'bad-signature' }
      let claims: unknown
      try {
        claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'))
      } catch {
        return { ok: false, reason: 'malformed' }
      }
      const { sub, exp } = (claims ?? {}) as { sub?: unknown; exp?: unknown }
      if (typeof sub !== 'string' || !sub || typeof exp !== 'number') return { ok: false, reason: 'malformed' }
      if (now() >= exp) return { ok: false, reason: 'expired' }
      return { ok: true, riderId: sub, expiresAt: exp }
    },
  }
}
