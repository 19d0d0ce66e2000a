import type { Adapter, SocketHost } from '../transport'
import { createSocketTaskAdapter } from './socket-task'

declare const uni: Required<SocketHost> | undefined
declare const my: Required<SocketHost>

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
  // #ifdef MP-ALIPAY
  return alipayHost(uni!)
  // #endif
  return uni
}

// #ifdef MP-ALIPAY
type NetworkListener = (res: { isConnected: boolean; networkType: string }) => void

/** uni's names for Alipay's network types (its own mapping): NOTREACHABLE is `none`, WWAN `3g`, the rest lower case. */
function uniNetwork(res: { isConnected?: boolean; networkAvailable?: boolean; networkType?: string }) {
  const type = String(res.networkType)
  return {
    isConnected: res.isConnected ?? res.networkAvailable ?? type !== 'NOTREACHABLE',
    networkType: type === 'NOTREACHABLE' ? 'none' : type === 'WWAN' ? '3g' : type.toLowerCase(),
  }
}

/**
 * uni's Alipay runtime hands `my` a fresh wrapper of every callback, `uni.off*` included, so `uni.off*(fn)` removes
 * nothing and every closed connection would leave its listeners behind. Sockets still go through uni (its error
 * normalisation); the lifecycle listeners go to `my` itself, each with one stable wrapper, so `off` finds them.
 */
function alipayHost(api: Required<SocketHost>): SocketHost {
  const wrappers = new Map<NetworkListener, NetworkListener>()
  const wrap = (cb: NetworkListener) => {
    let wrapped = wrappers.get(cb)
    if (!wrapped) wrappers.set(cb, (wrapped = (res) => cb(uniNetwork(res))))
    return wrapped
  }
  return {
    connectSocket: (options) => api.connectSocket(options),
    base64ToArrayBuffer: (base64) => my.base64ToArrayBuffer(base64),
    getNetworkType: (options) => my.getNetworkType({ ...options, success: (res) => options.success && options.success(uniNetwork(res)) }),
    onNetworkStatusChange: (cb) => my.onNetworkStatusChange(wrap(cb)),
    offNetworkStatusChange(cb) {
      if (!cb) return
      my.offNetworkStatusChange(wrap(cb))
      wrappers.delete(cb)
    },
    onAppShow: (cb) => my.onAppShow(cb),
    offAppShow: (cb) => my.offAppShow(cb),
    onAppHide: (cb) => my.onAppHide(cb),
    offAppHide: (cb) => my.offAppHide(cb),
  }
}
// #endif

/** Adapter over `uni.connectSocket` (every uni-app platform: mini-programs, H5, App). UNSUPPORTED_PLATFORM without uni. */
export function createUniAdapter(api: SocketHost | undefined = findUni()): Adapter {
  return createSocketTaskAdapter(api!, 'uni')
}
