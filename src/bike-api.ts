/**
 * The backend's bike API over uni.request: login, the session that keeps its access token fresh, reserve, unlock,
 * lock, the rider's active rides. Request and response shapes come from the server's contract, so both sides speak
 * from one definition.
 *
 * Tokens live only inside a session's closure: never in a URL, a log line, storage, or a reactive object a devtool
 * would show.
 */
import type {
  ActiveRidesResponse,
  ApiErrorBody,
  ConfigResponse,
  LoginRequest,
  LoginResponse,
  RefreshRequest,
  ReserveResponse,
  RideSummary,
  UnlockResponse,
} from '@/server/api-contract'
import { backendOrigin } from './config'

export type { RideSummary, RideView } from '@/server/api-contract'

/**
 * A failed call. `code` is the backend's error code (BAD_INPUT, BIKE_BUSY, RATE_LIMITED, …) or one of the app's own:
 * NETWORK (no answer), LOGIN_REFUSED (wrong rider or password, refused WeChat code), SESSION_EXPIRED (the refresh
 * token is gone too: only a new login helps).
 */
export class BikeApiError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    /** Details of the backend's answer: `reason` of a 401, `retryAfterMs` of a 429, `bike` of a RIDER_BUSY. */
    readonly details: { reason?: string; retryAfterMs?: number; bike?: string } = {},
  ) {
    super(message)
    this.name = 'BikeApiError'
  }
}

/** What the rider logs in with. `wechat`: try a WeChat login code first (mini-program), the password form when refused. */
export interface Credential {
  rider: string
  password: string
  wechat?: boolean
}

/** A logged-in rider. Keeps its tokens to itself; callers ask {@link Session.freshToken} for a usable one. */
export interface Session {
  /** The rider as the backend names it (the MQTT username). */
  readonly rider: string
  /** True once the refresh token was refused too: the session is over, only a new login helps. */
  readonly expired: boolean
  /**
   * A usable access token: the current one, or a new pair from `POST /api/token` when it expires soon, when `force`
   * is set, or when `refused` (a token the backend or broker just turned down) is still the current one. Concurrent
   * callers share one refresh (refresh tokens are one-use). Rejects with SESSION_EXPIRED when the refresh token is
   * refused, with NETWORK (or the backend's code) when the refresh could not be made and the current token has expired.
   */
  freshToken(options?: { force?: boolean; refused?: string }): Promise<string>
  /** Calls `listener` once when the session expires for good; returns a remover. */
  onExpired(listener: () => void): () => void
}

/** Refresh this long before expiry at most: a token handed to a connect attempt must outlive the handshake. */
const MAX_MARGIN_MS = 60_000

interface Answer<T> {
  status: number
  data: T
  /** The server's clock when it answered (its `Date` header), when it sent one. */
  serverTime?: number
}

function serverTimeOf(header: unknown): number | undefined {
  const headers = (header ?? {}) as Record<string, unknown>
  const value = headers.date ?? headers.Date
  const time = typeof value === 'string' ? Date.parse(value) : NaN
  return Number.isFinite(time) ? time : undefined
}

/** One HTTP round trip; resolves with any HTTP answer, rejects with NETWORK when there was none. */
function request<T>(method: 'GET' | 'POST', path: string, body?: unknown, token?: string): Promise<Answer<T>> {
  return new Promise((resolve, reject) => {
    uni.request({
      url: `${backendOrigin()}${path}`,
      method,
      data: body as never,
      // The token travels in a header only: URLs end up in logs and histories.
      header: { 'content-type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      success: (res) => resolve({ status: res.statusCode, data: res.data as T, serverTime: serverTimeOf(res.header) }),
      fail: (err) => reject(new BikeApiError('NETWORK', 0, err.errMsg || 'network error')),
    })
  })
}

/** The answer's body on 2xx, else a BikeApiError with the backend's code and details. */
function unwrap<T>(answer: Answer<T>): T {
  if (answer.status >= 200 && answer.status < 300) return answer.data
  const error = (answer.data as Partial<ApiErrorBody> | undefined)?.error
  throw new BikeApiError(error?.code ?? 'HTTP_ERROR', answer.status, error?.message ?? `HTTP ${answer.status}`, {
    reason: error?.reason,
    retryAfterMs: error?.retryAfterMs,
    bike: error?.bike,
  })
}

async function call<T>(method: 'GET' | 'POST', path: string, body?: unknown, token?: string): Promise<T> {
  return unwrap(await request<T>(method, path, body, token))
}

/** A login or refresh answer with the time it arrived and the server's clock then. */
interface Issued {
  pair: LoginResponse
  serverTime?: number
}

/** The error a session that can no longer refresh fails with. */
export function sessionExpiredError(): BikeApiError {
  return new BikeApiError('SESSION_EXPIRED', 401, 'the session expired: log in again')
}

function createSession(first: Issued): Session {
  let tokens = first.pair
  // Expiry by the local clock: the token's lifetime as the server counts it (from its Date header), started when the
  // pair arrived here. A device clock that is off by minutes or hours neither refreshes on every call nor too late.
  let deadline = 0
  let margin = 0
  const adopt = ({ pair: next, serverTime }: Issued): void => {
    const now = Date.now()
    // The header counts whole seconds: the server's clock may be up to one second past it.
    const lifetime = Math.max(0, next.expiresAt - (serverTime === undefined ? now : serverTime + 1000))
    tokens = next
    deadline = now + lifetime
    // A tenth of the lifetime, at most a minute: an hour-long token refreshes a minute early, a short one in proportion.
    margin = Math.min(MAX_MARGIN_MS, lifetime / 10)
  }
  adopt(first)
  let refreshing: Promise<string> | undefined
  let expired = false
  const listeners = new Set<() => void>()

  const expire = (): void => {
    if (expired) return
    expired = true
    for (const listener of [...listeners]) listener()
    listeners.clear()
  }

  const refresh = (): Promise<string> => {
    refreshing ??= (async () => {
      const body: RefreshRequest = { refreshToken: tokens.refreshToken }
      const answer = await request<LoginResponse>('POST', '/api/token', body)
      // 401: the refresh token expired or was used already; nothing but a new login can help.
      if (answer.status === 401) {
        expire()
        throw sessionExpiredError()
      }
      adopt({ pair: unwrap(answer), serverTime: answer.serverTime })
      return tokens.token
    })().finally(() => (refreshing = undefined))
    return refreshing
  }

  return {
    get rider() {
      return tokens.rider
    },
    get expired() {
      return expired
    },
    async freshToken({ force = false, refused }: { force?: boolean; refused?: string } = {}) {
      if (expired) throw sessionExpiredError()
      if (refreshing) return refreshing
      const stale = force || (refused !== undefined && refused === tokens.token)
      if (!stale && Date.now() < deadline - margin) return tokens.token
      try {
        return await refresh()
      } catch (error) {
        // The refresh failed for now (network, backend restarting): a token that has not expired yet still works.
        if (!expired && !stale && Date.now() < deadline) return tokens.token
        throw error
      }
    },
    onExpired(listener) {
      if (expired) {
        listener()
        return () => {}
      }
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
  }
}

/** A login code from `uni.login` (mini-programs), or undefined where there is none. */
function wechatCode(): Promise<string | undefined> {
  return new Promise((resolve) => {
    try {
      uni.login({
        provider: 'weixin',
        success: (res) => resolve(res.code || undefined),
        fail: () => resolve(undefined),
      })
    } catch {
      // A host without uni.login (H5, a test sandbox): the password form.
      resolve(undefined)
    }
  })
}

async function loginWith(body: LoginRequest): Promise<Session> {
  try {
    const answer = await request<LoginResponse>('POST', '/api/login', body)
    return createSession({ pair: unwrap(answer), serverTime: answer.serverTime })
  } catch (error) {
    if (error instanceof BikeApiError && error.status === 401) {
      throw new BikeApiError('LOGIN_REFUSED', 401, 'wrong rider or password', error.details)
    }
    throw error
  }
}

/**
 * Logs in: with `wechat`, a `uni.login` code first (a backend without a WeChat verifier answers FORBIDDEN, and a host
 * without uni.login has no code: then the password form), else the rider and password. Rejects with LOGIN_REFUSED,
 * RATE_LIMITED, NETWORK, …
 */
export async function login(credential: Credential): Promise<Session> {
  if (credential.wechat) {
    const code = await wechatCode()
    if (code) {
      try {
        return await loginWith({ wechatCode: code })
      } catch (error) {
        if (!(error instanceof BikeApiError && error.code === 'FORBIDDEN')) throw error
      }
    }
  }
  return loginWith({ rider: credential.rider, password: credential.password })
}

/**
 * A call with the session's bearer token. A 401 for an expired token (the device clock was off, or the token ran out
 * on the way) refreshes once and repeats the call; so does one signed with a key the backend no longer has.
 */
async function authorized<T>(session: Session, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const token = await session.freshToken()
  try {
    return await call<T>(method, path, body, token)
  } catch (error) {
    const reason = error instanceof BikeApiError && error.status === 401 ? error.details.reason : undefined
    if (reason !== 'expired' && reason !== 'bad-signature') throw error
    return call<T>(method, path, body, await session.freshToken({ refused: token }))
  }
}

/** Where the app's MQTT client should connect: the embedded broker, or the external one of `BROKER_URL`. */
export function brokerConfig(): Promise<ConfigResponse> {
  return call<ConfigResponse>('GET', '/api/config')
}

/** Holds the bike for this rider, so it may subscribe to the bike's unlock topic before asking for the unlock. */
export function reserve(session: Session, bike: string): Promise<ReserveResponse> {
  return authorized<ReserveResponse>(session, 'POST', `/api/bikes/${encodeURIComponent(bike)}/reserve`, {})
}

/** Asks for the unlock; the result arrives on the bike's unlocked topic. */
export function unlock(session: Session, bike: string): Promise<UnlockResponse> {
  return authorized<UnlockResponse>(session, 'POST', `/api/bikes/${encodeURIComponent(bike)}/unlock`, {})
}

/** Locks the bike; the summary also arrives on the bike's locked topic. */
export function lock(session: Session, bike: string): Promise<RideSummary> {
  return authorized<RideSummary>(session, 'POST', `/api/bikes/${encodeURIComponent(bike)}/lock`, {})
}

/**
 * The rider's holds (bikes reserved, unlocking or ridden), to learn what a BIKE_BUSY, a RIDER_BUSY or a missed
 * unlocked message meant.
 */
export function activeRides(session: Session): Promise<ActiveRidesResponse> {
  return authorized<ActiveRidesResponse>(session, 'GET', '/api/rides/active')
}
