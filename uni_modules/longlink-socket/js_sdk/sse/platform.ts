import { fail } from '../errors'
// #ifndef MP
// Mini-program builds have no fetch: uni's conditional compilation keeps the browser transport out of their bundle.
import { browserLifecycle } from '../adapters/web'
import { createFetchTransport, findFetch } from './fetch'
// #endif
import { createRequestTransport, type StreamTransport } from './stream'
import type { EventSourcePlatform, RequestHost } from './types'

declare const wx: RequestHost | undefined
declare const uni: RequestHost | undefined

function hostWithRequest(host: RequestHost | undefined): RequestHost | undefined {
  return host && typeof host.request === 'function' ? host : undefined
}

/** `wx`, in a WeChat mini-program (native, or a uni-app mp-weixin build). */
function findWx(): RequestHost | undefined {
  return typeof wx !== 'undefined' ? hostWithRequest(wx) : undefined
}

/** `uni` (App and the mini-programs other than WeChat: whether its task streams shows on the first request). */
function findUni(): RequestHost | undefined {
  return typeof uni !== 'undefined' ? hostWithRequest(uni) : undefined
}

/** The browser transport, when this runtime has a `fetch`. */
function web(): StreamTransport | undefined {
  // #ifndef MP
  const fetchImpl = findFetch()
  if (fetchImpl) return createFetchTransport(fetchImpl, browserLifecycle())
  // #endif
  return undefined
}

/** A transport whose every attempt fails with NOT_SUPPORTED: the source stops with it, it never hangs. */
function unsupported(name: string, why: string): StreamTransport {
  return {
    name,
    open(_request, callbacks) {
      callbacks.fail(fail('NOT_SUPPORTED', why))
      return () => {}
    },
  }
}

/**
 * Picks the transport for the `platform` option. `'auto'` prefers `wx.request` (uni's `request` on mp-weixin returns a
 * Promise instead of the task when interceptors are async, so the platform's own is called), then `fetch`, then
 * `uni.request`. A named platform that is not there throws UNSUPPORTED_PLATFORM; a runtime with none of them gets a
 * source that stops with NOT_SUPPORTED.
 */
export function resolveStreamTransport(platform: EventSourcePlatform | undefined): StreamTransport {
  if (platform === undefined || platform === 'auto') {
    const host = findWx()
    if (host) return createRequestTransport(host, 'wx')
    const browser = web()
    if (browser) return browser
    const uniHost = findUni()
    if (uniHost) return createRequestTransport(uniHost, 'uni')
    return unsupported('none', 'no wx.request, fetch or uni.request here')
  }
  if (platform === 'wx') {
    const host = findWx()
    if (host) return createRequestTransport(host, 'wx')
    throw fail('UNSUPPORTED_PLATFORM', 'no wx.request here')
  }
  if (platform === 'uni') {
    // On mp-weixin, uni.request is wx.request behind a wrapper that may hide the task; on H5, fetch streams better.
    const host = findWx()
    if (host) return createRequestTransport(host, 'uni')
    const browser = web()
    if (browser) return browser
    const uniHost = findUni()
    if (uniHost) return createRequestTransport(uniHost, 'uni')
    throw fail('UNSUPPORTED_PLATFORM', 'no uni.request here')
  }
  if (platform === 'web') {
    const browser = web()
    if (browser) return browser
    throw fail('UNSUPPORTED_PLATFORM', 'no fetch here')
  }
  if (platform && typeof platform === 'object' && typeof platform.request === 'function') return createRequestTransport(platform, 'custom')
  throw fail('INVALID_OPTION', `unknown platform ${String(platform)}`)
}
