import { fail } from '../errors'
import { checkHeader, checkKeys, resolveOptions, type ResolvedOptions } from '../core/options'

// Replaced by the host's bundler (see checkKeys in core/options.ts); module-scoped, so a host with Node's types keeps its own.
declare const process: { env: { NODE_ENV?: string } }
import type { EventSourceOptions } from './types'

/** The options of an event source after validation, with every default filled in. */
export interface ResolvedSourceOptions extends ResolvedOptions {
  method: 'GET' | 'POST'
  /** The body as sent, and the content type it implies when `headers` name none. */
  body: string | undefined
  contentType: string | undefined
  lastEventId: string
  idleTimeout: number
  /** 0: off. */
  maxStreamMs: number
}

/** Default numbers of an event source, documented in readme.md. */
export const SSE_DEFAULTS = {
  idleTimeout: 45_000,
  /** On mini-program platforms only: their requests are cut at 60 s. */
  maxStreamMs: 50_000,
  queueMax: 1000,
}

function invalid(message: string): never {
  throw fail('INVALID_OPTION', message)
}

/** A number of ms > 0, or `false`/0 for off; `fallback` when undefined. */
function msOrOff(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (value === false || value === 0) return 0
  if (typeof value !== 'number' || !(value > 0 && value < 2_147_483_648))
    invalid(`${name} must be a positive number of ms or false, got ${String(value)}`)
  return value
}

/** Throws INVALID_URL unless `url` is an absolute http(s) URL (or, in a browser, a path from the site's root). */
export function checkHttpUrl(url: unknown, allowPath: boolean): string {
  if (typeof url !== 'string' || !(/^https?:\/\/[^/?#\s]+[^\s]*$/i.test(url) || (allowPath && /^\/(?!\/)[^\s]*$/.test(url)))) {
    throw fail('INVALID_URL', `url must be http:// or https://${allowPath ? ' (or a path from /)' : ''}, got ${String(url).slice(0, 100)}`)
  }
  return url
}

/**
 * Validates every option (throwing INVALID_URL / INVALID_OPTION at once) and fills in the defaults. The options an
 * event source shares with a connection (reconnect, connectTimeout, auth, logger) are checked by the core's rules.
 */
export function resolveSourceOptions(url: string, input: EventSourceOptions, miniProgram: boolean): ResolvedSourceOptions {
  if (process.env.NODE_ENV !== 'production') {
    const known = [
      'platform',
      'method',
      'headers',
      'body',
      'auth',
      'lastEventId',
      'reconnect',
      'connectTimeout',
      'idleTimeout',
      'maxStreamMs',
      'queue',
      'logger',
    ]
    checkKeys('', input, known)
  }
  const method = input.method || 'GET'
  if (method !== 'GET' && method !== 'POST') invalid(`method must be 'GET' or 'POST', got ${String(method)}`)
  const { body, lastEventId = '' } = input
  const text = typeof body === 'string'
  // Bytes, maps and the like would go out as '{}' or index-keyed JSON: only what JSON carries faithfully.
  const kind = Object.prototype.toString.call(body)
  if (body != null && !text && kind !== '[object Object]' && kind !== '[object Array]')
    invalid(`body must be a string, an object or an array, got ${kind}`)
  if (body != null && method === 'GET') invalid('a body needs method POST')
  if (typeof lastEventId !== 'string' || /[\r\n\0]/.test(lastEventId)) invalid('lastEventId must be a string without CR, LF or NUL')
  const queue = input.queue
  const shared = resolveOptions(
    // The URL was checked by its own rule: the core's wants ws://.
    {
      url: 'wss://checked.separately',
      reconnect: input.reconnect,
      connectTimeout: input.connectTimeout,
      auth: input.auth,
      logger: input.logger,
      queue,
      heartbeat: false,
    },
    '[longlink:sse]',
  )
  let sent: string | undefined
  try {
    sent = body == null || text ? (body as string | undefined) : JSON.stringify(body)
  } catch (error) {
    throw fail('INVALID_OPTION', 'body is not JSON-serialisable', error)
  }
  return {
    ...shared,
    url,
    header: checkHeader(input.headers, 'headers'),
    // The core's rule checked queue.max; its default suits sends, this one events.
    queueMax: queue && queue.max !== undefined ? shared.queueMax : SSE_DEFAULTS.queueMax,
    method,
    body: sent,
    contentType: body == null ? undefined : text ? 'text/plain;charset=UTF-8' : 'application/json',
    lastEventId,
    idleTimeout: msOrOff('idleTimeout', input.idleTimeout, SSE_DEFAULTS.idleTimeout),
    // Off by default for a one-shot stream too: resuming it would send its request (a prompt, say) again.
    maxStreamMs: msOrOff('maxStreamMs', input.maxStreamMs, miniProgram && input.reconnect !== false ? SSE_DEFAULTS.maxStreamMs : 0),
  }
}
