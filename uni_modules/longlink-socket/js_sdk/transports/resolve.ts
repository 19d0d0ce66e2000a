import { resolveAdapter } from '../adapters/resolve'
import type { Supervisor, SupervisedEvents } from '../core/supervisor'
import { checkUrl } from '../core/options'
import type { LongLinkError } from '../errors'
import type { Adapter } from '../transport'
import type { PlatformOption } from '../types'
import { createTransportsAdapter } from './adapter'
import { resolveHttp } from './http'
import { resolveTransports, type TransportOptions } from './options'

/**
 * The adapter for a client's `platform` and `transports`: the platform's socket adapter as it is for the default
 * `['websocket']` (nothing changes, no HTTP code runs), else the adapter that runs the list. Throws INVALID_OPTION for a
 * bad list or `poll`, INVALID_URL for a bad url, UNSUPPORTED_PLATFORM when nothing listed can run here.
 */
export function resolveTransportAdapter(options: TransportOptions & { url: string; platform?: PlatformOption | undefined }): Adapter {
  const transports = resolveTransports(options)
  if (transports.list.length === 1 && transports.list[0] === 'websocket') return resolveAdapter(options.platform)
  const url = checkUrl(options.url)
  const platform = options.platform as Record<string, unknown> | undefined
  // A host with `request` and no sockets (a platform build without them) runs the HTTP transports only.
  const requestOnly =
    !!platform && typeof platform === 'object' && typeof platform['connectSocket'] !== 'function' && typeof platform['open'] !== 'function'
  let socket: Adapter | undefined
  try {
    socket = transports.list.includes('websocket') && !requestOnly ? resolveAdapter(options.platform) : undefined
  } catch (error) {
    // A runtime without sockets still has the HTTP transports; a bad `platform` is an error either way.
    if ((error as LongLinkError).code !== 'UNSUPPORTED_PLATFORM') throw error
  }
  return createTransportsAdapter(socket, resolveHttp(options.platform), transports, url)
}

/** Wires an adapter that runs several transports to its client: its changes become `transport` events. */
export function watchTransport(adapter: Adapter, sv: Pick<Supervisor<SupervisedEvents>, 'emit'>): void {
  if (adapter.blocked) adapter.onTransport = (change) => sv.emit('transport', change)
}
