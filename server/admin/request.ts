/**
 * What the admin's routes need from a request beyond its path: the method check and the body's media type (the
 * caller's address and the bounded body read are ../http/request.ts).
 */
import type { IncomingMessage } from 'node:http'
import { ApiError } from '../http/respond'

/** Throws a 405 (with the `allow` header) unless `method` is one of `allowed`. */
export function allowMethods(method: string, allowed: string[]): void {
  if (!allowed.includes(method)) {
    throw new ApiError(405, 'METHOD_NOT_ALLOWED', `use ${allowed.join(' or ')}`, undefined, { allow: allowed.join(', ') })
  }
}

/** The body's media type, lower case and without parameters (`''` when there is none). */
export const mediaType = (req: IncomingMessage): string => (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase()

/** True for the POST of an HTML form, which is answered with a page or a redirect rather than JSON. */
export const isFormPost = (req: IncomingMessage): boolean => mediaType(req) === 'application/x-www-form-urlencoded'
