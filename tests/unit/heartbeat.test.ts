import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createHeartbeat } from '../../uni_modules/longlink-socket/js_sdk/core/heartbeat'

describe('heartbeat arithmetic (fake timers)', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  function setup(interval = 1000, timeout = 500) {
    const pings: number[] = []
    let deadAt: number | undefined
    const start = Date.now()
    const hb = createHeartbeat(
      interval,
      timeout,
      () => pings.push(Date.now() - start),
      () => (deadAt = Date.now() - start),
    )
    return { hb, pings, dead: () => deadAt }
  }

  it('pings after interval of silence and declares death at interval + timeout', () => {
    const { hb, pings, dead } = setup()
    hb.start()
    vi.advanceTimersByTime(999)
    expect(pings).toEqual([])
    vi.advanceTimersByTime(1)
    expect(pings).toEqual([1000])
    vi.advanceTimersByTime(499)
    expect(dead()).toBeUndefined()
    vi.advanceTimersByTime(1)
    expect(dead()).toBe(1500)
  })

  it('any inbound traffic postpones the ping and cancels a pending death', () => {
    const { hb, pings, dead } = setup()
    hb.start()
    vi.advanceTimersByTime(800)
    hb.alive()
    vi.advanceTimersByTime(800)
    expect(pings).toEqual([])
    vi.advanceTimersByTime(200)
    expect(pings).toEqual([1800])
    vi.advanceTimersByTime(400)
    hb.alive()
    vi.advanceTimersByTime(999)
    expect(dead()).toBeUndefined()
    expect(pings).toEqual([1800])
  })

  it('times inbound traffic once per turn: a message in a later turn moves the ping', async () => {
    const { hb, pings } = setup()
    hb.start()
    vi.advanceTimersByTime(500)
    hb.alive()
    // The turn ends (its microtasks run); the next message is timed anew.
    await Promise.resolve()
    vi.advanceTimersByTime(300)
    hb.alive()
    vi.advanceTimersByTime(999)
    expect(pings).toEqual([])
    vi.advanceTimersByTime(1)
    expect(pings).toEqual([1800])
  })

  it('a pong measures the round trip', () => {
    const { hb } = setup()
    hb.start()
    vi.advanceTimersByTime(1000)
    vi.advanceTimersByTime(42)
    expect(hb.pong()).toBe(42)
    expect(hb.pong()).toBeUndefined()
  })

  it('check() pings now and expects life within timeout', () => {
    const { hb, pings, dead } = setup()
    hb.start()
    vi.advanceTimersByTime(300)
    hb.check()
    expect(pings).toEqual([300])
    vi.advanceTimersByTime(500)
    expect(dead()).toBe(800)
  })

  it('stop() cancels everything and alive() does not restart a stopped heartbeat', () => {
    const { hb, pings, dead } = setup()
    hb.start()
    hb.stop()
    hb.alive()
    vi.advanceTimersByTime(10_000)
    expect(pings).toEqual([])
    expect(dead()).toBeUndefined()
  })
})
