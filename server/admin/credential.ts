/**
 * The admin credential: the password people type at the login form and scripts send as a bearer token.
 */
import crypto from 'node:crypto'

/** The configured admin password, checked without revealing it through timing. */
export interface AdminPassword {
  /** False when no password is configured: then nobody can log in. */
  readonly configured: boolean
  /** True when `given` is the admin password (always false when none is configured). */
  matches(given: string): boolean
}

/** Creates the check for `password`, keyed with the admin's `secret`. */
export function createAdminPassword(secret: Buffer, password: string): AdminPassword {
  // Both sides hashed with a keyed hash: equal lengths for timingSafeEqual, and the length of the password leaks nothing.
  const digest = (s: string): Buffer => crypto.createHmac('sha256', secret).update('admin-password\0').update(s, 'utf8').digest()
  const expected = digest(password)
  const configured = password.length > 0
  return {
    configured,
    matches: (given) => configured && crypto.timingSafeEqual(digest(given), expected),
  }
}

/** The token of an `Authorization: Bearer <token>` header, or undefined when there is none. */
export function bearerToken(header: string | undefined): string | undefined {
  // Everything after the scheme: an admin password may hold spaces.
  const m = header ? /^Bearer\s+(.*?)\s*$/i.exec(header) : null
  return m && m[1] !== '' ? m[1] : undefined
}
