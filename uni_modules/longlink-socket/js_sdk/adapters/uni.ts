import type { Adapter, SocketHost } from '../transport'
import { createSocketTaskAdapter } from './socket-task'

declare const uni: Required<SocketHost> | undefined

/** The `uni` global, when this runs inside a uni-app build (the uni compiler injects it). */
export function findUni(): SocketHost | undefined {
  if (typeof uni === 'undefined' || !uni || typeof uni.connectSocket !== 'function') return undefined
  // #ifdef H5
  // uni-h5 turns every `uni.x` it sees in source into an import of x, and its global `uni` lacks what it did not
  // see: each API is named here, statically, so the build brings it in.
  return {
    connectSocket: (options) => uni!.connectSocket(options),
    onNetworkStatusChange: (cb) => uni!.onNetworkStatusChange(cb),
    offNetworkStatusChange: (cb) => uni!.offNetworkStatusChange(cb),
    getNetworkType: (options) => uni!.getNetworkType(options),
    onAppShow: (cb) => uni!.onAppShow(cb),
    offAppShow: (cb) => uni!.offAppShow(cb),
    onAppHide: (cb) => uni!.onAppHide(cb),
    offAppHide: (cb) => uni!.offAppHide(cb),
  }
  // #endif
  return uni
}

/** Adapter over `uni.connectSocket` (every uni-app platform: mini-programs, H5, App). UNSUPPORTED_PLATFORM without uni. */
export function createUniAdapter(api: SocketHost | undefined = findUni()): Adapter {
  return createSocketTaskAdapter(api!, 'uni')
}
