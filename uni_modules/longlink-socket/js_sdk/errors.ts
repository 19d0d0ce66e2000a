/**
 * Every error LongLink raises is a {@link LongLinkError} with one of these string codes.
 * The table in the plugin's readme.md documents each one; keep the two in step.
 */
export const ErrorCode = {
  /** The URL is not a ws:// or wss:// URL (SSE: not an http:// or https:// URL). Thrown at once. */
  INVALID_URL: 'INVALID_URL',
  /** An option has a wrong type or value. Thrown at once. */
  INVALID_OPTION: 'INVALID_OPTION',
  /** `send` got something that is not a string, ArrayBuffer, ArrayBufferView or plain object. */
  INVALID_DATA: 'INVALID_DATA',
  /** No platform could be found (`platform: 'auto'` found no uni, wx or WebSocket), or the one named is missing. */
  UNSUPPORTED_PLATFORM: 'UNSUPPORTED_PLATFORM',
  /** One connection attempt did not open within `connectTimeout`. */
  CONNECT_TIMEOUT: 'CONNECT_TIMEOUT',
  /** One connection attempt failed (refused, DNS, handshake rejected, platform `fail`). */
  CONNECT_FAILED: 'CONNECT_FAILED',
  /** The `auth` hook threw or rejected; the attempt counts as failed. */
  AUTH_FAILED: 'AUTH_FAILED',
  /** The outgoing queue already holds `queue.max` messages. */
  QUEUE_FULL: 'QUEUE_FULL',
  /** The connection was closed (by `close()` or because reconnecting gave up) before the work could finish. */
  CLOSED: 'CLOSED',
  /** The platform refused another socket (mini-programs allow 5 at once). Retrying cannot help until one closes. */
  SOCKET_LIMIT: 'SOCKET_LIMIT',
  /** The platform failed to send a message on an open link. */
  SEND_FAILED: 'SEND_FAILED',
  /** `reconnect.maxRetries` attempts in a row failed; the connection is closed. */
  RETRIES_EXHAUSTED: 'RETRIES_EXHAUSTED',
  /** An event handler threw; the error is reported and the connection goes on. */
  HANDLER_ERROR: 'HANDLER_ERROR',
  /** The open link failed (platform `onError`); it is replaced. */
  SOCKET_ERROR: 'SOCKET_ERROR',
  /** A wait (for example `waitFor` in the MQTT entry) ran out of time; SSE: a one-shot stream silent for `idleTimeout`. */
  TIMEOUT: 'TIMEOUT',
  /** MQTT: the broker refused the login (bad username/password or not authorized). */
  NOT_AUTHORIZED: 'NOT_AUTHORIZED',
  /** MQTT: the broker refused the connection for another reason; `error.reasonCode` holds its code. */
  CONNACK_REFUSED: 'CONNACK_REFUSED',
  /** MQTT: the broker refused a subscription (SUBACK failure); `error.reasonCode` holds its code. */
  SUBSCRIBE_REFUSED: 'SUBSCRIBE_REFUSED',
  /** MQTT: a topic or filter is not valid for the operation (empty, misplaced wildcard, wildcard in a publish). */
  INVALID_TOPIC: 'INVALID_TOPIC',
  /** MQTT: the broker rejected a publish (MQTT 5 PUBACK/PUBREC reason code ≥ 0x80), or MQTT.js failed to send it. */
  PUBLISH_FAILED: 'PUBLISH_FAILED',
  /**
   * SSE: this platform cannot stream a response (no chunked request: App without it, Alipay, Douyin; a browser without
   * a streaming `fetch`). The message names the API and why. The source stops; long polling is what works there.
   */
  NOT_SUPPORTED: 'NOT_SUPPORTED',
  /** SSE: the server answered with a status other than 2xx; `error.status` holds it. 5xx, 408 and 429 are retried. */
  HTTP_STATUS: 'HTTP_STATUS',
  /** SSE: a 2xx answer whose `Content-Type` is not `text/event-stream`. The source stops, as a browser's does. */
  BAD_CONTENT_TYPE: 'BAD_CONTENT_TYPE',
} as const

/** One of the documented error codes. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]

/** The single error type of LongLink: check `error.code` against {@link ErrorCode}. */
export class LongLinkError extends Error {
  /** A documented, stable code (see {@link ErrorCode}). */
  readonly code: ErrorCode
  /** What caused it, when there is an underlying error or platform message. */
  readonly cause?: unknown
  /** MQTT reason or return code, on CONNACK_REFUSED, NOT_AUTHORIZED, SUBSCRIBE_REFUSED and PUBLISH_FAILED. */
  reasonCode?: number
  /** SSE: the HTTP status of the answer, on HTTP_STATUS and BAD_CONTENT_TYPE. */
  status?: number

  constructor(code: ErrorCode, message: string, cause?: unknown) {
    super(message)
    this.name = 'LongLinkError'
    this.code = code
    if (cause !== undefined) this.cause = cause
    // Keeps `instanceof` working when the code is compiled down to ES5 classes.
    Object.setPrototypeOf(this, new.target.prototype)
  }
}

/** True when `value` is a LongLinkError, optionally with the given code. */
export function isLongLinkError(value: unknown, code?: ErrorCode): value is LongLinkError {
  return value instanceof LongLinkError && (code === undefined || value.code === code)
}

/** @internal Shorthand for `new LongLinkError(...)`, used across the SDK to keep the mini-program bundle small. */
export function fail(code: ErrorCode, message: string, cause?: unknown): LongLinkError {
  return new LongLinkError(code, message, cause)
}

/** @internal The message of anything thrown or reported by a platform (`errMsg` objects included). */
export function messageOf(value: unknown): string {
  const v = value as { errMsg?: unknown; message?: unknown } | undefined
  return String((v && (v.errMsg || v.message)) || value)
}
