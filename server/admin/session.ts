/**
 * The admin session: a signed cookie, stateless but for the (bounded) list of sessions logged out early.
 *
 * A cookie value is `v1.<expiresAt>.<id>.<hmac>`; the HMAC is keyed with the admin's secret, so a session cannot be
 * forged or extended without it.
 */
import crypto from 'node:crypto'
import type { IncomingMessage } from 'node:http'

/** Name of the session cookie. */
export const ADMIN_COOKIE = 'longlink_admin'
/** How long a session lasts. */
export const ADMIN_SESSION_MS = 12 * 60 * 60 * 1000

/** Revoked sessions remembered until they expire anyway. */
const REVOKED_MAX = 10_000

/** A valid session, as read back from its cookie. */
export interface Session {
  /** Random, unique per login; names the session for revocation and for the live feeds opened with it. */
  id: string
  /** When the session ends (ms since epoch). */
  expiresAt: number
}

/** A session just issued, with the cookie value that carries it. */
export interface IssuedSession extends Session {
  value: string
}

/** Issues, reads and revokes admin sessions. */
export interface Sessions {
  /** A new session, valid for {@link ADMIN_SESSION_MS}. */
  issue(): IssuedSession
  /** The first valid session among the request's cookies, or undefined. */
  fromRequest(req: IncomingMessage): Session | undefined
  /** Makes `session` invalid before it expires (logout). */
  revoke(session: Session): void
  /** A `Set-Cookie` value carrying `value` for `maxAgeSeconds` (0 with an empty value clears the cookie). */
  cookieHeader(req: IncomingMessage, value: string, maxAgeSeconds: number): string
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

/** Creates the sessions, signed with `secret`. */
export function createSessions(secret: Buffer): Sessions {
  const revoked = new Map<string, number>()

  const sign = (payload: string): Buffer => crypto.createHmac('sha256', secret).update('admin-session\0').update(payload).digest()

  const verify = (value: string): Session | undefined => {
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

  return {
    issue() {
      const id = crypto.randomBytes(16).toString('base64url')
      const expiresAt = Date.now() + ADMIN_SESSION_MS
      const payload = `v1.${expiresAt}.${id}`
      return { id, expiresAt, value: `${payload}.${sign(payload).toString('base64url')}` }
    },

    fromRequest(req) {
      for (const value of cookieValues(req.headers.cookie, ADMIN_COOKIE)) {
        const s = verify(value)
        if (s) return s
      }
      return undefined
    },

    revoke(s) {
      const now = Date.now()
      if (revoked.size >= REVOKED_MAX) {
        for (const [id, exp] of revoked) if (exp <= now) revoked.delete(id)
        for (const id of revoked.keys()) {
          if (revoked.size < REVOKED_MAX) break
          revoked.delete(id)
        }
      }
      revoked.set(s.id, s.expiresAt)
    },

    cookieHeader(req, value, maxAgeSeconds) {
      const secure = (req.socket as { encrypted?: boolean }).encrypted || req.headers['x-forwarded-proto'] === 'https' ? '; Secure' : ''
      return `${ADMIN_COOKIE}=${value}; Max-Age=${maxAgeSeconds}; Path=/admin; HttpOnly; SameSite=Strict${secure}`
    },
  }
}
