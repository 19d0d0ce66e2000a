import { fail, type LongLinkError } from '../errors'
import type { CloseReason, TransitionReason } from '../types'

/** The numbers of a backoff policy (see ReconnectOptions for their meaning). */
export interface BackoffPolicy {
  min: number
  max: number
  factor: number
  jitter: number
}

/** The upper bound of the delay before retry `attempt` (1-based): `min × factor^(attempt−1)`, capped at `max`. */
export function backoffBound(attempt: number, policy: BackoffPolicy): number {
  // Past a few dozen attempts the power overflows to Infinity; the cap keeps it finite.
  const exponent = Math.min(Math.max(attempt - 1, 0), 64)
  return Math.min(policy.max, policy.min * Math.pow(policy.factor, exponent))
}

/**
 * The delay before retry `attempt`: uniform in `[bound × (1 − jitter), bound]`.
 * Jitter spreads out clients that lost the same server, so a restart is not met by a synchronized stampede.
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const bound = backoffBound(attempt, policy)
  return Math.round(bound * (1 - policy.jitter * random()))
}

/** What follows a lost link or a failed attempt. */
export interface NextStep {
  to: 'reconnecting' | 'offline' | 'closed'
  because: TransitionReason
  /** Set when the session stops: the error waiting work fails with. */
  stopError?: LongLinkError
}

/**
 * The reconnect policy's decision once a link or an attempt is lost: retry after a delay, wait offline (network
 * down or app hidden: no attempts), or stop (reconnect off, or `maxRetries` failures in a row). One rule for the
 * core connection and the MQTT client.
 */
export function nextStep(
  policy: { maxRetries: number } | undefined,
  attempt: number,
  blocked: boolean,
  reason: CloseReason,
  error?: LongLinkError,
): NextStep {
  if (!policy) return { to: 'closed', because: reason, stopError: error || fail('CLOSED', `link lost (${reason}), reconnect off`) }
  if (blocked) return { to: 'offline', because: reason }
  if (attempt >= policy.maxRetries) {
    return { to: 'closed', because: 'retries-exhausted', stopError: fail('RETRIES_EXHAUSTED', `gave up after ${attempt} retries`, error) }
  }
  return { to: 'reconnecting', because: reason }
}
