import type { Adapter, SocketHost } from '../transport'
import { createSocketTaskAdapter } from './socket-task'

declare const wx: SocketHost | undefined

/** The `wx` global of a WeChat mini-program (native or a uni-app mp-weixin build). */
export function findWx(): SocketHost | undefined {
  return typeof wx !== 'undefined' && wx && typeof wx.connectSocket === 'function' ? wx : undefined
}

/** Adapter over `wx.connectSocket`. UNSUPPORTED_PLATFORM without wx. */
export function createWxAdapter(api: SocketHost | undefined = findWx()): Adapter {
  return createSocketTaskAdapter(api!, 'wx')
}
