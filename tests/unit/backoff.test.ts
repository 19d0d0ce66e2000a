import { describe, expect, it } from 'vitest'
import { backoffBound, backoffDelay, type BackoffPolicy } from '../../uni_modules/longlink-socket/js_sdk/index'

const policy: BackoffPolicy = { min: 1000, max: 30_000, factor: 2, jitter: 0.5 }

describe('backoff', () => {
  it('doubles the bound per attempt up to max', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((a) => backoffBound(a, policy))).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000])
  })

  it('never overflows, however many attempts', () => {
    expect(backoffBound(10_000, policy)).toBe(30_000)
    expect(backoffDelay(10_000, policy, () => 0)).toBe(30_000)
  })

  it('draws each delay from [bound × (1 − jitter), bound]', () => {
    expect(backoffDelay(3, policy, () => 0)).toBe(4000)
    expect(backoffDelay(3, policy, () => 1)).toBe(2000)
    expect(backoffDelay(3, policy, () => 0.5)).toBe(3000)
  })

  it('full jitter (1) may go down to zero, no jitter (0) is exact', () => {
    expect(backoffDelay(2, { ...policy, jitter: 1 }, () => 1)).toBe(0)
    expect(backoffDelay(2, { ...policy, jitter: 0 }, () => 0.7)).toBe(2000)
  })

  it('with the default jitter, delays never shrink from one attempt to the next below the cap', () => {
    for (let round = 0; round < 200; round++) {
      let previous = 0
      // Bounds 1, 2, 4, 8, 16 s: below max, each range starts where the previous one ends.
      for (let attempt = 1; attempt <= 5; attempt++) {
        const delay = backoffDelay(attempt, policy)
        expect(delay).toBeGreaterThanOrEqual(previous)
        expect(delay).toBeLessThanOrEqual(policy.max)
        previous = delay
      }
    }
  })

  it('spreads clients: delays for the same attempt differ', () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(4, policy)))
    expect(delays.size).toBeGreaterThan(10)
  })
})
