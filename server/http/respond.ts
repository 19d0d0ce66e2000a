/** Writing JSON answers and typed API errors (shared by the routes, the admin and the static files). */
import type { ServerResponse } from 'node:http'
import type { ApiErrorCode } from '../api-contract'

/** An error that becomes a JSON response `{ error: { code, status, message, ...details } }`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ApiErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
    /** Extra response headers (e.g. `allow` on a 405, `retry-after` on a 429). */
    readonly headers?: Record<string, string>,
  ) {
    super(message)
    this.name = 'ApiError'
  }
}

/** Writes `body` as JSON with `no-store` caching. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body)
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    'cache-control': 'no-store',
    ...headers,
  })
  res.end(text)
}

/** Writes an {@link ApiError} as `{ error: { code, status, message, ...details } }`. */
export function sendError(res: ServerResponse, err: ApiError): void {
  sendJson(res, err.status, { error: { code: err.code, status: err.status, message: err.message, ...err.details } }, err.headers)
}
