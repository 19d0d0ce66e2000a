import { ErrorCode, LongLinkError } from '../errors'
import type { PlatformOption } from '../types'
import type { Adapter, SocketHost } from '../transport'
import { createSocketTaskAdapter } from './socket-task'
import { createUniAdapter, findUni } from './uni'
import { createWebAdapter, findWebSocket } from './web'
import { createWxAdapter, findWx } from './wx'

/**
 * Picks the adapter for the `platform` option. `'auto'` prefers uni (it covers every uni-app target),
 * then wx (a native mini-program), then the standard WebSocket.
 */
export function resolveAdapter(platform: PlatformOption | undefined): Adapter {
  if (platform === undefined || platform === 'auto') {
    const uniHost = findUni()
    if (uniHost) return createUniAdapter(uniHost)
    const wxHost = findWx()
    if (wxHost) return createWxAdapter(wxHost)
    if (findWebSocket()) return createWebAdapter()
    throw new LongLinkError(ErrorCode.UNSUPPORTED_PLATFORM, 'No socket API found: no uni, no wx and no WebSocket in this runtime')
  }
  if (platform === 'uni') return createUniAdapter()
  if (platform === 'wx') return createWxAdapter()
  if (platform === 'web') return createWebAdapter()
  if (platform && typeof platform === 'object') {
    if (typeof (platform as Adapter).open === 'function' && typeof (platform as Adapter).name === 'string') return platform as Adapter
    if (typeof (platform as SocketHost).connectSocket === 'function') return createSocketTaskAdapter(platform as SocketHost, 'custom')
  }
  throw new LongLinkError(
    ErrorCode.INVALID_OPTION,
    `platform must be 'auto', 'uni', 'wx', 'web', an object with connectSocket(), or an adapter; got ${typeof platform === 'string' ? JSON.stringify(platform) : typeof platform}`,
  )
}
