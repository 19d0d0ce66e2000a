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
 * `uni.request`; `'uni'` the same (on H5, fetch streams better than uni-h5's request). A named platform that is not
 * there throws UNSUPPORTED_PLATFORM; a runtime with none of them gets a source that stops with NOT_SUPPORTED.
 */
export function resolveStreamTransport(platform: EventSourcePlatform | undefined): StreamTransport {
  if (platform && typeof platform === 'object' && typeof platform.request === 'function') return createRequestTransport(platform, 'custom')
  const auto = platform === undefined || platform === 'auto'
  if (!auto && platform !== 'wx' && platform !== 'uni' && platform !== 'web') throw fail('INVALID_OPTION', `unknown platform ${String(platform)}`)
  const host = platform !== 'web' && findWx()
  if (host) return createRequestTransport(host, auto ? 'wx' : platform)
  const browser = platform !== 'wx' && web()
  if (browser) return browser
  const uniHost = platform !== 'wx' && platform !== 'web' && findUni()
  if (uniHost) return createRequestTransport(uniHost, 'uni')
  if (auto) return unsupported('none', 'no wx.request, fetch or uni.request here')
  throw fail('UNSUPPORTED_PLATFORM', `no ${platform === 'web' ? 'fetch' : `${platform}.request`} here`)
}
