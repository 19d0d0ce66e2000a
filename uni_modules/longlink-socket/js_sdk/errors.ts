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
  /**
   * The heartbeat's ping was never answered, and two links in a row were dropped as dead (`heartbeat-timeout`) while
   * the reconnect between them succeeded at once: the server most likely does not answer pings. Reported once per
   * connection, and only while no answer has ever arrived.
   * The message says what the server must do or how to configure `heartbeat`. The connection goes on.
   */
  HEARTBEAT_UNANSWERED: 'HEARTBEAT_UNANSWERED',
  /**
   * The mini-program refused the URL's domain: it is not in the socket (or, for SSE, request) domain allow-list of
   * the mini-program's admin console. The connection stops (`closed`); retrying cannot help until it is added.
   */
  DOMAIN_NOT_ALLOWED: 'DOMAIN_NOT_ALLOWED',
  /**
   * The platform requires an encrypted URL: `ws://` (SSE: `http://`) where `wss://` (`https://`) is required, on a
   * mini-program device or in an HTTPS page. The connection stops (`closed`).
   */
  INSECURE_URL: 'INSECURE_URL',
  /**
   * The TLS handshake failed: the server's certificate is expired, self-signed, for another name or sent without its
   * intermediate chain (or the device clock is wrong). Retried like any failed attempt (a portal network can cause it).
   */
  TLS_FAILED: 'TLS_FAILED',
} as const

/** One of the documented error codes. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]

/** Set by the host's bundler: development builds explain more. */
declare const process: { env: { NODE_ENV?: string } }

/** The single error type of LongLink: check `error.code` against {@link ErrorCode}. */
export class LongLinkError extends Error {
  /** A documented, stable code (see {@link ErrorCode}). */
  readonly code: ErrorCode
  /** What caused it, when there is an underlying error or platform message. */
  readonly cause?: unknown
  /** MQTT reason or return code, on CONNACK_REFUSED, NOT_AUTHORIZED, SUBSCRIBE_REFUSED and PUBLISH_FAILED. */
  reasonCode?: number
  /** SSE and the HTTP transports: the HTTP status of the answer, on HTTP_STATUS, BAD_CONTENT_TYPE and NOT_AUTHORIZED. */
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

/**
 * @internal The message of anything thrown or reported by a platform, whatever its shape: WeChat, uni and Douyin
 * `{ errMsg }`, Alipay `{ error, errorMessage }` (also nested in `data`), `{ error: message }`, Error objects. An object
 * that says nothing (uni-h5's socket `onError` passes `{}`) reads as "no details", never "[object Object]".
 */
export function messageOf(value: unknown): string {
  const v = value as { errMsg?: unknown; errorMessage?: unknown; message?: unknown; error?: unknown; data?: unknown } | undefined
  const said = v && (v.errMsg || v.errorMessage || v.message || v.error || (v.data && messageOf(v.data)))
  return said ? String(said) : value && typeof value === 'object' ? 'no details' : String(value)
}

/** What fixes each cause, spelled out in development builds only (production keeps the code and the platform's words). */
const FIXES: Partial<Record<ErrorCode, string>> = {
  DOMAIN_NOT_ALLOWED: " (add the domain to the mini-program's server domains in its admin console; DevTools can skip the check while developing)",
  TLS_FAILED: " (the server's certificate is expired, self-signed, for another name or sent without its chain)",
  INSECURE_URL: ' (use wss:// or https://: mini-programs on devices and HTTPS pages refuse unencrypted links)',
}

/**
 * @internal A platform's failure (`fail` result, error event or throw) as a LongLinkError: the causes a developer can
 * fix get their own code (and, in development builds, a message that says the fix), anything else gets `code`.
 *
 * The platform's words decide, checked one cause at a time in this order: the URL's domain is not allowed, TLS failed,
 * the socket limit (WeChat: `exceed max task count`, Android's older `max connected`), an unencrypted URL refused (only
 * when `url` is one). URLs and the requested host are taken out of the text first: a host named `ssl.example.com` or
 * a path `/limit` must not decide, least of all for the causes that stop the connection.
 */
export function platformError(res: unknown, code: ErrorCode, what: string, url: string): LongLinkError {
  const said = messageOf(res)
  const host = url.replace(/^\w+:\/\/([^/?#:]*).*$/, '$1')
  const text = said
    .replace(/\w+:\/\/\S*/g, '')
    .split(host || '\n')
    .join('')
  code = /domain list|no valid domain|合法域名|access this domain/i.test(text)
    ? 'DOMAIN_NOT_ALLOWED'
    : /\b(ssl|tls)\b|certific|ERR_(CERT|SSL)|证书/i.test(text)
      ? 'TLS_FAILED'
      : /exceed max|max (task|socket|connect)|too many (socket|connection|task)/i.test(text)
        ? 'SOCKET_LIMIT'
        : /^(ws|http):/i.test(url) && /invalid url|insecure|\bscheme\b/i.test(text)
          ? 'INSECURE_URL'
          : code
  return fail(code, `${what}: ${said}${process.env.NODE_ENV !== 'production' ? FIXES[code] || '' : ''}`, res)
}

/**
 * A refusal that repeating the same attempt cannot change (the socket limit, a domain outside the allow-list, an
 * insecure URL): the client stops, unless another transport is left.
 */
export function refusedForGood(error: LongLinkError): boolean {
  return /^(SOCKET_LIMIT|DOMAIN_NOT_ALLOWED|INSECURE_URL)$/.test(error.code)
}
