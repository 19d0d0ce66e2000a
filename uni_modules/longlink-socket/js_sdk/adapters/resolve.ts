import { fail } from '../errors'
import type { PlatformOption } from '../types'
import type { Adapter, SocketHost } from '../transport'
import { createSocketTaskAdapter } from './socket-task'
import { createUniAdapter, findUni } from './uni'
// #ifndef MP
// Mini-program builds have no WebSocket: uni's conditional compilation keeps this adapter out of their bundle.
import { createWebAdapter, findWebSocket } from './web'
// #endif
import { createWxAdapter, findWx } from './wx'

/**
 * Picks the adapter for the `platform` option. `'auto'` prefers uni (it covers every uni-app target),
 * then wx (a native mini-program), then the standard WebSocket.
 */
export function resolveAdapter(platform: PlatformOption | undefined): Adapter {
  if (platform === undefined || platform === 'auto') {
    if (findUni()) return createUniAdapter()
    if (findWx()) return createWxAdapter()
    // #ifndef MP
    if (findWebSocket()) return createWebAdapter()
    // #endif
    throw fail('UNSUPPORTED_PLATFORM', 'no uni, wx or WebSocket here')
  }
  if (platform === 'uni') return createUniAdapter()
  if (platform === 'wx') return createWxAdapter()
  if (platform === 'web') {
    // #ifndef MP
    return createWebAdapter()
    // #endif
    throw fail('UNSUPPORTED_PLATFORM', 'no WebSocket in mini-programs')
  }
  if (platform && typeof platform === 'object') {
    if (typeof (platform as Adapter).open === 'function' && typeof (platform as Adapter).name === 'string') return platform as Adapter
    if (typeof (platform as SocketHost).connectSocket === 'function') return createSocketTaskAdapter(platform as SocketHost, 'custom')
  }
  throw fail('INVALID_OPTION', `unknown platform ${String(platform)}`)
}
