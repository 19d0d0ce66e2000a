import { fail } from '../errors'
import { checkKeys } from '../core/options'

// Replaced by the host's bundler (see checkKeys in core/options.ts).
declare const process: { env: { NODE_ENV?: string } }

/** The transports a connection can use, in the client's and the server's names. */
export type TransportName = 'websocket' | 'sse' | 'long-polling' | 'polling'

const NAMES: readonly TransportName[] = ['websocket', 'sse', 'long-polling', 'polling']

/** The `transport` event: the transport in use changed. */
export interface TransportChange {
  from: TransportName
  to: TransportName
  /** `fallback`: the one before never opened; `upgrade`: a probe brought the connection back to an earlier one. */
  reason: 'fallback' | 'upgrade'
}

/** The options that choose and tune transports (shared by the connection and the MQTT client). */
export interface TransportOptions {
  /**
   * The transports to use, in order of preference. Default `['websocket']`. The next one is tried only when the
   * current one never opened (two failures before open, or a WebSocket closed abnormally before any message).
   */
  transports?: TransportName[] | undefined
  /** Short polling: `interval` ms between two requests (default 2000). */
  poll?: { interval?: number | undefined } | undefined
  /**
   * While on a transport later in the list, how often (ms) the earlier ones are tried again, make-before-break
   * (default 60000; `false` only on a network change).
   */
  probeInterval?: number | false | undefined
}

/** Validated transport options. */
export interface ResolvedTransports {
  list: TransportName[]
  pollInterval: number
  probeInterval: number | false
}

export const TRANSPORT_DEFAULTS = { pollInterval: 2000, probeInterval: 60_000 }

/** Validates `transports`, `poll` and `probeInterval`, throwing INVALID_OPTION. */
export function resolveTransports(o: TransportOptions): ResolvedTransports {
  const bad = (message: string): never => {
    throw fail('INVALID_OPTION', message)
  }
  const list = o.transports === undefined ? ['websocket' as const] : o.transports
  if (!Array.isArray(list) || !list.length) bad(`transports must be a non-empty array of ${NAMES.join(', ')}`)
  for (const name of list) {
    if (!NAMES.includes(name)) bad(`unknown transport ${JSON.stringify(name)}: use ${NAMES.join(', ')}`)
  }
  if (new Set(list).size !== list.length) bad('transports lists a transport twice')
  const poll = o.poll
  if (poll !== undefined && (!poll || typeof poll !== 'object' || Array.isArray(poll))) bad('poll must be an object')
  if (process.env.NODE_ENV !== 'production') checkKeys('poll.', poll, ['interval'])
  const interval = poll && poll.interval !== undefined ? poll.interval : TRANSPORT_DEFAULTS.pollInterval
  if (typeof interval !== 'number' || !(interval > 0 && interval < Infinity))
    bad(`poll.interval must be a positive number of ms, got ${String(interval)}`)
  const probe = o.probeInterval === undefined ? TRANSPORT_DEFAULTS.probeInterval : o.probeInterval
  if (probe !== false && (typeof probe !== 'number' || !(probe > 0 && probe < Infinity)))
    bad(`probeInterval must be a positive number of ms, or false, got ${String(probe)}`)
  return { list: list.slice(), pollInterval: interval, probeInterval: probe }
}

/** The HTTP URL of a ws:// or wss:// URL (same host, path and query). */
export function httpUrl(url: string): string {
  return url.replace(/^ws/i, 'http')
}

/** `url` with `params` appended to its query. */
export function withQuery(url: string, params: Record<string, string | number>): string {
  const hash = url.indexOf('#')
  const base = hash < 0 ? url : url.slice(0, hash)
  const pairs = Object.keys(params).map((k) => `${k}=${encodeURIComponent(String(params[k]))}`)
  return base + (base.includes('?') ? '&' : '?') + pairs.join('&')
}
