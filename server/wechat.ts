/**
 * WeChat login: the mini-program's `uni.login()` / `wx.login()` code, exchanged for the user's openid.
 *
 * - {@link createJscode2sessionVerifier}: the real exchange, `GET /sns/jscode2session` with the app's id and secret.
 * - {@link createDevVerifier}: for development on loopback only, accepts `dev:<rider>` and answers openid
 *   `dev-<rider>`; the backend refuses to enable it on any other interface.
 */
import { RIDER_ID } from './api-contract'

export interface WechatIdentity {
  openId: string
  /** The rider to create or use for a new openid (the dev stub names one; the real exchange does not). */
  suggestedRider?: string
}

/** Exchanges a login code; rejects with a {@link WechatLoginError} when the code is refused. */
export interface WechatVerifier {
  readonly kind: 'jscode2session' | 'dev'
  exchange(code: string): Promise<WechatIdentity>
}

export class WechatLoginError extends Error {
  constructor(
    message: string,
    /** True when WeChat could not be asked (network, 5xx): a 503, not a 401. */
    readonly unavailable = false,
  ) {
    super(message)
    this.name = 'WechatLoginError'
  }
}

export function createDevVerifier(): WechatVerifier {
  return {
    kind: 'dev',
    async exchange(code) {
      const m = /^dev:(.+)$/.exec(code)
      if (!m || !RIDER_ID.test(m[1])) throw new WechatLoginError('development codes look like dev:<rider>')
      return { openId: `dev-${m[1].toLowerCase()}`, suggestedRider: m[1].toLowerCase() }
    },
  }
}

export function createJscode2sessionVerifier(opts: { appId: string; secret: string; apiBase: string; timeoutMs?: number }): WechatVerifier {
  return {
    kind: 'jscode2session',
    async exchange(code) {
      if (!/^[\w-]{1,128}$/.test(code)) throw new WechatLoginError('malformed login code')
      const url = new URL('/sns/jscode2session', opts.apiBase)
      url.search = new URLSearchParams({ appid: opts.appId, secret: opts.secret, js_code: code, grant_type: 'authorization_code' }).toString()
      let body: { openid?: string; errcode?: number; errmsg?: string }
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(opts.timeoutMs ?? 5000) })
        if (res.status >= 500) throw new Error(`HTTP ${res.status}`)
        body = (await res.json()) as typeof body
      } catch (err) {
        // The message names no URL: it carries the app secret in its query.
        throw new WechatLoginError(`WeChat login service unreachable (${(err as Error).name})`, true)
      }
      if (body.errcode || typeof body.openid !== 'string' || !body.openid) {
        throw new WechatLoginError(`WeChat refused the code (errcode ${body.errcode ?? 'none'})`)
      }
      return { openId: body.openid }
    },
  }
}
