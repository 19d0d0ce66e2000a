/**
 * What the admin's routes need from a request beyond its path: the method check, the caller's address, the body's
 * media type, and a body read with a size limit.
 */
import type { IncomingMessage } from 'node:http'
import { ApiError } from '../http/respond'

/** Throws a 405 (with the `allow` header) unless `method` is one of `allowed`. */
export function allowMethods(method: string, allowed: string[]): void {
  if (!allowed.includes(method)) {
    throw new ApiError(405, 'METHOD_NOT_ALLOWED', `use ${allowed.join(' or ')}`, undefined, { allow: allowed.join(', ') })
  }
}

/** The caller's remote address, the key of the login limiter and a field of the security log lines. */
export const addressOf = (req: IncomingMessage): string => req.socket.remoteAddress ?? 'unknown'

/** The body's media type, lower case and without parameters (`''` when there is none). */
export const mediaType = (req: IncomingMessage): string => (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase()

/** True for the POST of an HTML form, which is answered with a page or a redirect rather than JSON. */
export const isFormPost = (req: IncomingMessage): boolean => mediaType(req) === 'application/x-www-form-urlencoded'

/** Reads at most `limit` bytes of body; past that, a 413 (the rest is discarded and the connection closed). */
export function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const tooLarge = () => new ApiError(413, 'BODY_TOO_LARGE', `the body is over ${limit} bytes`, { limit }, { connection: 'close' })
  const declared = Number(req.headers['content-length'])
  if (Number.isFinite(declared) && declared > limit) {
    req.resume()
    return Promise.reject(tooLarge())
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const cleanup = () => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
      req.off('aborted', onError)
    }
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) {
        cleanup()
        req.resume()
        return reject(tooLarge())
      }
      chunks.push(chunk)
    }
    const onEnd = () => {
      cleanup()
      resolve(Buffer.concat(chunks).toString('utf8'))
    }
    const onError = () => {
      cleanup()
      reject(new ApiError(400, 'BAD_INPUT', 'the body did not arrive'))
    }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
    req.on('aborted', onError)
  })
}
