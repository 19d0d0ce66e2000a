/** Reading requests safely: the request target without `new URL()` (which throws on `//a:b`), and bounded JSON bodies. */
import type { IncomingMessage } from 'node:http'
import { ApiError } from './respond'

export interface Target {
  pathname: string
  query: URLSearchParams
}

/**
 * Splits an origin-form request target (`/path?query`). Anything else (`*`, an absolute URL, an empty target) →
 * undefined, which the caller answers with 400. Never throws: `URLSearchParams` accepts any string.
 */
export function parseTarget(raw: string | undefined): Target | undefined {
  if (!raw || raw[0] !== '/') return undefined
  const hash = raw.indexOf('#')
  const target = hash < 0 ? raw : raw.slice(0, hash)
  const q = target.indexOf('?')
  return { pathname: q < 0 ? target : target.slice(0, q), query: new URLSearchParams(q < 0 ? '' : target.slice(q + 1)) }
}

/** The caller's address (the socket's; this backend does not sit behind a proxy it trusts). */
export const remoteAddress = (req: IncomingMessage): string => req.socket?.remoteAddress ?? 'unknown'

/**
 * Reads a JSON object body of at most `limit` bytes; an empty body is `{}`. The HTTP server's `requestTimeout`
 * bounds how long the body may trickle. Throws ApiError 400 / 413 / 415.
 */
export async function readJson(req: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
  // Too large: the rest is read and dropped (not buffered), so the client gets its 413 instead of a reset; the
  // answer closes the connection.
  const tooLarge = (): ApiError => {
    req.resume()
    return new ApiError(413, 'BODY_TOO_LARGE', `body larger than ${limit} bytes`, undefined, { connection: 'close' })
  }
  const declared = Number(req.headers['content-length'])
  if (Number.isFinite(declared) && declared > limit) throw tooLarge()
  const chunks: Buffer[] = []
  const size = await new Promise<number>((resolve, reject) => {
    let total = 0
    const onData = (chunk: Buffer): void => {
      total += chunk.length
      if (total <= limit) return void chunks.push(chunk)
      req.off('data', onData)
      reject(tooLarge())
    }
    req.on('data', onData)
    req.once('end', () => resolve(total))
    req.once('error', reject)
    req.once('close', () => reject(Object.assign(new Error('request aborted'), { code: 'ECONNRESET' })))
  })
  if (size === 0) return {}
  const type = String(req.headers['content-type'] ?? '')
  if (type && !/^application\/(.+\+)?json\s*(;|$)/i.test(type)) throw new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', 'expected a JSON body')
  let value: unknown
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    throw new ApiError(400, 'BAD_INPUT', 'body is not valid JSON')
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new ApiError(400, 'BAD_INPUT', 'body must be a JSON object')
  return value as Record<string, unknown>
}
