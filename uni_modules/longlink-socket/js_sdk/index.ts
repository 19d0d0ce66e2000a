/**
 * LongLink core entry: one long connection over uni / wx / WebSocket with heartbeat, reconnect, lifecycle
 * awareness and a bounded send queue. MQTT lives in the separate `./mqtt` entry, so this one stays small.
 */
import { createConnectionCore, type Connection } from './core/connection'
import { checkKeys, CONNECTION_KEYS } from './core/options'
import { fail } from './errors'
import { resolveTransportAdapter } from './transports/resolve'
import type { ConnectionOptions } from './types'

// Replaced by the host's bundler (see checkKeys in core/options.ts); module-scoped, so a host with Node's types keeps its own.
declare const process: { env: { NODE_ENV?: string } }

/**
 * Creates a connection (it does not connect until `open()`). Throws INVALID_URL or INVALID_OPTION at once
 * for bad input (in development builds also for an unknown option key, naming the nearest valid one), and
 * UNSUPPORTED_PLATFORM when the platform asked for is not there (or can run none of the `transports`).
 */
export function createConnection(options: ConnectionOptions): Connection {
  if (!options || typeof options !== 'object') throw fail('INVALID_OPTION', 'options with a url are required')
  if (process.env.NODE_ENV !== 'production') checkKeys('', options, CONNECTION_KEYS)
  return createConnectionCore(resolveTransportAdapter(options), options)
}

export type { Connection } from './core/connection'
export { ErrorCode, LongLinkError, isLongLinkError } from './errors'
export { backoffBound, backoffDelay, type BackoffPolicy } from './core/backoff'
export { DEFAULTS } from './core/options'
export { resolveAdapter } from './adapters/resolve'
export { createSocketTaskAdapter } from './adapters/socket-task'
export { createUniAdapter } from './adapters/uni'
export { createWxAdapter } from './adapters/wx'
// #ifndef MP
export { createWebAdapter } from './adapters/web'
// #endif
export type { WebSocketConstructor, WebSocketLike } from './adapters/web'
export type * from './types'
export type * from './transport'
export { TRANSPORT_DEFAULTS } from './transports/options'
