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
      req.off('close', onError)
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
    // Destroyed before its end (a timeout, the client gone): nothing more will come.
    req.on('close', onError)
  })
}

/**
 * Reads a JSON object body of at most `limit` bytes; an empty body is `{}`. The HTTP server's `requestTimeout`
 * bounds how long the body may trickle. Throws ApiError 400 / 413 / 415.
 */
export async function readJson(req: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
  const text = await readBody(req, limit)
  if (text.length === 0) return {}
  const type = String(req.headers['content-type'] ?? '')
  if (type && !/^application\/(.+\+)?json\s*(;|$)/i.test(type)) throw new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', 'expected a JSON body')
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new ApiError(400, 'BAD_INPUT', 'body is not valid JSON')
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new ApiError(400, 'BAD_INPUT', 'body must be a JSON object')
  return value as Record<string, unknown>
}
