/**
 * Errors and the JSON answers of the protocol: `{"error": CODE, "message": text}` with `no-store` caching, on a
 * response or (for a refused upgrade) written raw on the socket.
 */
import type { ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'

/** The `code` of an Error that `conn.send` rejects with. */
export type SendErrorCode = 'CLOSED' | 'BUFFER_FULL' | 'INVALID_DATA'

/** An Error with a machine-readable `code`. */
export class LongLinkError extends Error {
  constructor(
    readonly code: SendErrorCode,
    message: string,
  ) {
    super(message)
    this.name = 'LongLinkError'
  }
}

export type HttpErrorCode =
  'BAD_REQUEST' | 'NOT_AUTHORIZED' | 'METHOD_NOT_ALLOWED' | 'STALE' | 'SESSION_GONE' | 'TOO_LARGE' | 'TOO_MANY_SESSIONS' | 'CLOSING' | 'INTERNAL'

/** A refusal that becomes an HTTP answer. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: HttpErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message)
    this.name = 'HttpError'
  }
}

export const badRequest = (message: string): HttpError => new HttpError(400, 'BAD_REQUEST', message)

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }

/** Writes JSON text (unless the response is already gone). */
export function sendJsonText(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return
  res.writeHead(status, { ...headers, ...JSON_HEADERS, 'content-length': String(Buffer.byteLength(text)) })
  res.end(text)
}

/** Writes `body` as JSON (unless the response is already gone). */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  sendJsonText(res, status, JSON.stringify(body), headers)
}

/** Answers `err` as `{"error", "message"}`. */
export function sendHttpError(res: ServerResponse, err: HttpError, headers: Record<string, string> = {}): void {
  sendJson(res, err.status, { error: err.code, message: err.message }, { ...headers, ...err.headers })
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
}

/** Refuses an upgrade with an HTTP answer on the raw socket, then lets go of the socket (bounded by a short grace). */
export function rejectUpgrade(socket: Duplex, err: HttpError): void {
  if (!socket.writable || socket.destroyed) return void socket.destroy()
  const body = JSON.stringify({ error: err.code, message: err.message })
  socket.end(
    `HTTP/1.1 ${err.status} ${REASONS[err.status] ?? 'Error'}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\n` +
      `cache-control: no-store\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  )
  // A peer that never reads must not keep the socket.
  setTimeout(() => socket.destroy(), 1000).unref()
}
