/** The numbers of a backoff policy (see ReconnectOptions for their meaning). */
export interface BackoffPolicy {
  min: number
  max: number
  factor: number
  jitter: number
}

/**
 * The upper bound of the delay before retry `attempt` (1-based): `min × factor^(attempt−1)`, capped at `max`. `attempt`
 * may be fractional: it is the position on the ladder, where refused attempts climb less than 1 (`refusedWeight`).
 */
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
