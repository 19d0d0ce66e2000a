/**
 * Riders and their credentials: seeding the demo riders, login with a password or a WeChat code, refresh tokens.
 * Knows nothing of HTTP: failures are {@link BikeError}s with API error codes.
 *
 * - Access tokens are stateless and signed ({@link TokenService}); they are the API bearer and the MQTT password.
 * - Refresh tokens are random, kept only as a SHA-256 hash in the store, one use each (every refresh rotates them).
 * - Failed logins are counted per remote address; past `loginFailuresPerMinute` the address gets RATE_LIMITED.
 */
import { createHash, randomBytes } from 'node:crypto'
import { RIDER_ID, type LoginResponse } from './api-contract'
import { BikeError } from './bikes'
import { createFailureLimiter } from './failure-limiter'
import { isLoopbackHost } from './config'
import type { Logger } from './log'
import { hashPassword, verifyPassword } from './passwords'
import type { Store } from './store/types'
import type { TokenService } from './tokens'
import { WechatLoginError, type WechatVerifier } from './wechat'

export interface Accounts {
  /** Adds the demo riders with the demo password (once; existing riders keep theirs). */
  seed(riders: string[], password: string | undefined): Promise<void>
  /** `{rider, password}` or `{wechatCode}` → tokens. `address` is the caller's, for the failure limit. */
  login(body: Record<string, unknown>, address: string): Promise<LoginResponse>
  /** `{refreshToken}` → a new pair; the old refresh token stops working. */
  refresh(body: Record<string, unknown>): Promise<LoginResponse>
}

export interface AccountsDeps {
  store: Store
  tokens: TokenService
  logger: Logger
  config: { tokenTtlMs: number; refreshTtlMs: number; loginFailuresPerMinute: number }
  /** WeChat code verifiers (real and/or development stub); none → WeChat login answers FORBIDDEN. */
  wechat: WechatVerifier[]
  /** Counts refusals (admin metrics). */
  refused?: () => void
  now?: () => number
}

/** Password hashes computed at once (the size of Node's default thread pool). */
const PASSWORD_CHECKS_AT_ONCE = 4
/** Logins waiting for a hash slot; past this the login answers RATE_LIMITED. */
const PASSWORD_CHECKS_QUEUED = 200

/** At most `size` holders at once, at most `queued` waiting; `acquire` throws RATE_LIMITED when the queue is full. */
function createGate(size: number, queued: number) {
  let busy = 0
  const waiting: (() => void)[] = []
  const release = (): void => {
    const next = waiting.shift()
    if (next) next()
    else busy--
  }
  return {
    async acquire(): Promise<() => void> {
      if (busy < size) {
        busy++
        return release
      }
      if (waiting.length >= queued) throw new BikeError('RATE_LIMITED', 'too many logins at once; try again shortly', { retryAfterMs: 1000 })
      await new Promise<void>((resolve) => waiting.push(resolve))
      return release
    },
  }
}

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex')

export function createAccounts(deps: AccountsDeps): Accounts {
  const { store, tokens, logger, config } = deps
  const now = deps.now ?? Date.now
  const failures = createFailureLimiter(config.loginFailuresPerMinute, 60_000)
  // scrypt is costly by design: a few at a time, a bounded queue, and the failure limit checked again just before
  // each hash, so a burst of wrong passwords from one address stops at the limit instead of all being hashed.
  const gate = createGate(PASSWORD_CHECKS_AT_ONCE, PASSWORD_CHECKS_QUEUED)
  // A hash to verify against when the rider does not exist, so a wrong rider id costs as long as a wrong password.
  const dummyHash = hashPassword(randomBytes(16).toString('hex'))

  const checkLimit = (address: string): void => {
    const retryAfterMs = failures.retryAfter(address, now())
    if (retryAfterMs > 0) throw new BikeError('RATE_LIMITED', 'too many failed logins; wait a minute', { retryAfterMs })
  }
  const fail = (address: string, reason: string, fields: Record<string, unknown>): never => {
    failures.fail(address, now())
    deps.refused?.()
    logger.warn('rider.login.refused', { ...fields, reason, address })
    throw new BikeError('UNAUTHORIZED', 'wrong rider or password', { reason: 'bad-credentials' })
  }

  const issue = async (rider: string): Promise<LoginResponse> => {
    const access = tokens.issue(rider, config.tokenTtlMs)
    const refreshToken = randomBytes(32).toString('base64url')
    const refreshExpiresAt = now() + config.refreshTtlMs
    await store.saveRefreshToken(sha256(refreshToken), rider, refreshExpiresAt)
    return { rider, token: access.token, expiresAt: access.expiresAt, refreshToken, refreshExpiresAt }
  }

  return {
    async seed(riders, password) {
      const hash = password === undefined ? null : await hashPassword(password)
      for (const id of riders) {
        if (!RIDER_ID.test(id)) throw new Error(`DEMO_RIDERS: ${JSON.stringify(id)} is not a rider id`)
        await store.addRider({ id: id.toLowerCase(), passwordHash: hash, wechatOpenId: null, createdAt: now() })
      }
    },

    async login(body, address) {
      checkLimit(address)
      if (typeof body.wechatCode === 'string') {
        if (deps.wechat.length === 0) throw new BikeError('FORBIDDEN', 'WeChat login is not enabled on this backend')
        const verifier = body.wechatCode.startsWith('dev:') ? deps.wechat.find((v) => v.kind === 'dev') : deps.wechat.find((v) => v.kind !== 'dev')
        if (!verifier) throw new BikeError('FORBIDDEN', 'this kind of WeChat login code is not accepted here')
        // Development codes only from this machine itself, whatever the configuration says.
        if (verifier.kind === 'dev' && !isLoopbackHost(address.replace(/^::ffff:/, ''))) {
          throw new BikeError('FORBIDDEN', 'development login codes are accepted from this machine only')
        }
        let identity
        try {
          identity = await verifier.exchange(body.wechatCode)
        } catch (err) {
          if (err instanceof WechatLoginError && err.unavailable) throw new BikeError('UNAVAILABLE', err.message)
          return fail(address, 'wechat-code-refused', { error: (err as Error).message })
        }
        let rider = await store.riderByWechat(identity.openId)
        if (!rider) {
          const id = identity.suggestedRider ?? `wx_${sha256(identity.openId).slice(0, 16)}`
          await store.addRider({ id, passwordHash: null, wechatOpenId: identity.openId, createdAt: now() })
          rider = await store.riderByWechat(identity.openId)
          // The suggested id belonged to a password rider already: do not hand that account over.
          if (!rider) return fail(address, 'wechat-id-taken', { rider: id })
        }
        logger.info('rider.login', { rider: rider.id, method: 'wechat' })
        return issue(rider.id)
      }
      const { rider, password } = body
      if (typeof rider !== 'string' || !RIDER_ID.test(rider)) throw new BikeError('BAD_INPUT', 'rider must match /^[a-z0-9_-]{1,32}$/i')
      if (typeof password !== 'string' || password.length === 0 || password.length > 256) {
        throw new BikeError('BAD_INPUT', 'password must be a string of 1..256 characters')
      }
      const id = rider.toLowerCase()
      const release = await gate.acquire()
      let record, ok: boolean
      try {
        checkLimit(address)
        record = await store.getRider(id)
        ok = record?.passwordHash ? await verifyPassword(password, record.passwordHash) : (await verifyPassword(password, await dummyHash), false)
      } finally {
        release()
      }
      if (!ok) return fail(address, record ? 'bad-password' : 'unknown-rider', { rider: id })
      logger.info('rider.login', { rider: id, method: 'password' })
      return issue(id)
    },

    async refresh(body) {
      const { refreshToken } = body
      if (typeof refreshToken !== 'string' || refreshToken.length === 0 || refreshToken.length > 256) {
        throw new BikeError('BAD_INPUT', 'refreshToken must be a string')
      }
      const rider = await store.takeRefreshToken(sha256(refreshToken), now())
      if (!rider) {
        deps.refused?.()
        throw new BikeError('UNAUTHORIZED', 'refresh token expired or already used', { reason: 'expired' })
      }
      return issue(rider)
    },
  }
}
