/** Small HTTP helpers shared by the API, admin and static handlers. */
import type { IncomingMessage, ServerResponse } from 'node:http'

/** An error that becomes a JSON response `{ error: { code, status, message } }`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message)
    this.name = 'ApiError'
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body)
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  })
  res.end(text)
}

export function sendError(res: ServerResponse, err: ApiError): void {
  sendJson(res, err.status, { error: { code: err.code, status: err.status, message: err.message, ...err.details } })
}

/** Reads a JSON object body (at most `limit` bytes); empty body → `{}`. Throws ApiError 400/413/415. */
export async function readJson(req: IncomingMessage, limit = 16 * 1024): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > limit) throw new ApiError(413, 'BODY_TOO_LARGE', `body larger than ${limit} bytes`)
    chunks.push(chunk as Buffer)
  }
  if (size === 0) return {}
  const type = String(req.headers['content-type'] ?? '')
  if (type && !/json/i.test(type)) throw new ApiError(415, 'BAD_INPUT', 'expected a JSON body')
  let value: unknown
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    throw new ApiError(400, 'BAD_INPUT', 'body is not valid JSON')
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new ApiError(400, 'BAD_INPUT', 'body must be a JSON object')
  return value as Record<string, unknown>
}
