/**
 * `POST /admin/login` and `POST /admin/logout`: the routes that open and close an admin session.
 *
 * Both answer an HTML form with a page or a redirect and a script with JSON, and both refuse a foreign origin
 * (CSRF). Failed logins count against the caller's address in the login limiter.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ApiErrorCode } from '../api-contract'
import { ApiError, sendJson } from '../http/respond'
import type { Logger } from '../log'
import type { AdminPassword } from './credential'
import { sendHtml } from './html'
import type { LoginLimiter } from './login-limiter'
import { loginPage } from './login-page'
import type { Refuse } from './refusal'
import { readBody, remoteAddress } from '../http/request'
import { isFormPost, mediaType } from './request'
import { ADMIN_SESSION_MS, type Sessions } from './session'

/** Largest login body read; a password needs far less. */
const LOGIN_BODY_LIMIT = 4096

export interface LoginRoutesDeps {
  logger: Logger
  password: AdminPassword
  sessions: Sessions
  limiter: LoginLimiter
  refuse: Refuse
  /** The CSRF check: true when a POST from `origin` is allowed. */
  isAllowedOrigin(origin: string | undefined): boolean
  /** Called with the id of a session just logged out, to end what was opened with it (the live feeds). */
  onLogout(sessionId: string): void
}

export interface LoginRoutes {
  /** `POST /admin/login`: `{password}` as JSON or a form → the session cookie. */
  login(req: IncomingMessage, res: ServerResponse): Promise<void>
  /** `POST /admin/logout`: revokes the session and clears the cookie. */
  logout(req: IncomingMessage, res: ServerResponse): void
}

/** The password of a login body: JSON `{password}` or a form's `password=`. */
function parsePassword(req: IncomingMessage, body: string): string {
  const type = mediaType(req)
  if (type === 'application/x-www-form-urlencoded') {
    const password = new URLSearchParams(body).get('password')
    if (password === null) throw new ApiError(400, 'BAD_INPUT', 'password is required')
    return password
  }
  if (type === 'application/json') {
    let parsed: unknown
    try {
      parsed = JSON.parse(body)
    } catch {
      throw new ApiError(400, 'BAD_INPUT', 'the body is not JSON')
    }
    const password = parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as { password?: unknown }).password : undefined
    if (typeof password !== 'string') throw new ApiError(400, 'BAD_INPUT', 'password (a string) is required')
    return password
  }
  throw new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', 'send JSON {"password": …} or a form with password=')
}

/** Creates the login and logout routes. */
export function createLoginRoutes(deps: LoginRoutesDeps): LoginRoutes {
  const { logger, password, sessions, limiter, refuse } = deps

  /** A refusal for the login form (HTML, same status) or for a script (ApiError, JSON). */
  const refuseLogin = (
    res: ServerResponse,
    form: boolean,
    status: number,
    code: ApiErrorCode,
    message: string,
    details?: Record<string, unknown>,
    headers?: Record<string, string>,
  ): void => {
    if (!form) throw new ApiError(status, code, message, details, headers)
    sendHtml(res, status, loginPage(message), headers)
  }

  const checkOrigin = (req: IncomingMessage, res: ServerResponse, form: boolean, what: string): boolean => {
    if (deps.isAllowedOrigin(req.headers.origin)) return true
    refuse('admin.origin.refused', { what, origin: req.headers.origin ?? null, address: remoteAddress(req) })
    refuseLogin(res, form, 403, 'FORBIDDEN', '来源不被允许 · Origin not allowed')
    return false
  }

  const login = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const form = isFormPost(req)
    const address = remoteAddress(req)
    if (!checkOrigin(req, res, form, 'login')) return void req.resume()
    if (!password.configured) {
      req.resume()
      refuse('admin.login.refused', { address, reason: 'not-configured' })
      return refuseLogin(res, form, 403, 'FORBIDDEN', '未配置管理密码 · Admin login is not configured')
    }
    const wait = limiter.retryAfter(address)
    if (wait > 0) {
      req.resume()
      const seconds = Math.ceil(wait / 1000)
      refuse('admin.login.rate_limited', { address, retryAfterMs: wait })
      return refuseLogin(
        res,
        form,
        429,
        'RATE_LIMITED',
        `尝试次数过多，请 ${seconds} 秒后再试 · Too many attempts, try again in ${seconds} s`,
        {
          retryAfterMs: wait,
        },
        { 'retry-after': String(seconds) },
      )
    }
    const given = parsePassword(req, await readBody(req, LOGIN_BODY_LIMIT))
    if (!password.matches(given)) {
      limiter.fail(address)
      refuse('admin.login.refused', { address, reason: 'wrong-password' })
      return refuseLogin(res, form, 401, 'UNAUTHORIZED', '密码错误 · Wrong password', { reason: 'wrong-password' })
    }
    limiter.clear(address)
    const session = sessions.issue()
    logger.info('admin.login', { address })
    const setCookie = sessions.cookieHeader(req, session.value, Math.floor(ADMIN_SESSION_MS / 1000))
    if (form) {
      res.writeHead(303, { location: '/admin', 'set-cookie': setCookie, 'cache-control': 'no-store', 'content-length': '0' })
      return void res.end()
    }
    sendJson(res, 200, { ok: true, expiresAt: session.expiresAt }, { 'set-cookie': setCookie })
  }

  const logout = (req: IncomingMessage, res: ServerResponse): void => {
    req.resume()
    const form = isFormPost(req)
    if (!checkOrigin(req, res, form, 'logout')) return
    const session = sessions.fromRequest(req)
    if (session) {
      sessions.revoke(session)
      // The feeds of this session stop too: the page is no longer signed in.
      deps.onLogout(session.id)
      logger.info('admin.logout', { address: remoteAddress(req) })
    }
    const clear = sessions.cookieHeader(req, '', 0)
    if (form) {
      res.writeHead(303, { location: '/admin', 'set-cookie': clear, 'cache-control': 'no-store', 'content-length': '0' })
      return void res.end()
    }
    sendJson(res, 200, { ok: true }, { 'set-cookie': clear })
  }

  return { login, logout }
}
