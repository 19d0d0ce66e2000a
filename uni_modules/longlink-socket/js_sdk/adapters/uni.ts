import type { Adapter, SocketHost } from '../transport'
import { createSocketTaskAdapter } from './socket-task'

declare const uni: SocketHost | undefined

/** The `uni` global, when this runs inside a uni-app build (the uni compiler injects it). */
export function findUni(): SocketHost | undefined {
  return typeof uni !== 'undefined' && uni && typeof uni.connectSocket === 'function' ? uni : undefined
}

/** Adapter over `uni.connectSocket` (every uni-app platform: mini-programs, H5, App). UNSUPPORTED_PLATFORM without uni. */
export function createUniAdapter(api: SocketHost | undefined = findUni()): Adapter {
  return createSocketTaskAdapter(api!, 'uni')
}
