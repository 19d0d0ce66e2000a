/**
 * An unknown option key is a typo: in development builds (and here, where NODE_ENV is not 'production') every entry
 * throws INVALID_OPTION naming the key, at every level, and the nearest valid one when one is close. Production
 * bundles carry none of it (tests/build/build.test.ts checks the mp-weixin output).
 */
import { describe, expect, it } from 'vitest'
import { createConnection, LongLinkError } from '../../uni_modules/longlink-socket/js_sdk/index'
import { createMqttClient } from '../../uni_modules/longlink-socket/js_sdk/mqtt'
import { createEventSource } from '../../uni_modules/longlink-socket/js_sdk/sse'
import { nearestKey } from '../../uni_modules/longlink-socket/js_sdk/core/options'

/** The INVALID_OPTION message `make` throws. */
function refusal(make: () => unknown): string {
  try {
    make()
  } catch (error) {
    expect(error).toBeInstanceOf(LongLinkError)
    expect((error as LongLinkError).code).toBe('INVALID_OPTION')
    return (error as LongLinkError).message
  }
  throw new Error('expected INVALID_OPTION, nothing was thrown')
}

const host = { connectSocket: () => ({}) }
const requests = { request: () => ({}) }

describe('unknown option keys', () => {
  it.each([
    [{ retry: true }, 'unknown option "retry": did you mean "reconnect"?'],
    [{ reconnect: { minDelay: 500 } }, 'unknown option "reconnect.minDelay": did you mean "reconnect.min"?'],
    [{ reconnect: { maxretries: 3 } }, 'unknown option "reconnect.maxretries": did you mean "reconnect.maxRetries"?'],
    [{ heartbeat: { intervall: 1000 } }, 'unknown option "heartbeat.intervall": did you mean "heartbeat.interval"?'],
    [{ headers: { a: 'b' } }, 'unknown option "headers": did you mean "header"?'],
    [{ queue: { size: 10 } }, 'unknown option "queue.size"'],
    [{ conectTimeout: 1000 }, 'unknown option "conectTimeout": did you mean "connectTimeout"?'],
  ])('createConnection refuses %j', (extra, message) => {
    expect(refusal(() => createConnection({ url: 'wss://example.com/ws', platform: host, ...extra } as never))).toBe(message)
  })

  it.each([
    [{ keepAlive: 30 }, 'unknown option "keepAlive": did you mean "keepalive"?'],
    [{ reconnectPeriod: 1000 }, 'unknown option "reconnectPeriod": did you mean "reconnect"?'],
    [{ will: { topik: 'a/b', payload: 'x' } }, 'unknown option "will.topik": did you mean "will.topic"?'],
    [{ reconnect: { min: 1, jiter: 0.5 } }, 'unknown option "reconnect.jiter": did you mean "reconnect.jitter"?'],
  ])('createMqttClient refuses %j', (extra, message) => {
    expect(refusal(() => createMqttClient({ url: 'wss://example.com/mqtt', platform: host, ...extra } as never))).toBe(message)
  })

  it.each([
    [{ header: { a: 'b' } }, 'unknown option "header": did you mean "headers"?'],
    [{ idle: 1000 }, 'unknown option "idle": did you mean "idleTimeout"?'],
    [{ queue: { max: 10, limit: 5 } }, 'unknown option "queue.limit"'],
  ])('createEventSource refuses %j', (extra, message) => {
    expect(refusal(() => createEventSource('https://example.com/events', { platform: requests, ...extra } as never))).toBe(message)
  })

  it('accepts every documented key', () => {
    const connection = createConnection({
      url: 'wss://example.com/ws',
      platform: host,
      header: {},
      protocols: [],
      timeout: 1000,
      connectTimeout: 1000,
      verifyTimeout: 1000,
      heartbeat: { interval: 1000, timeout: 1000, ping: 'ping', pong: 'pong' },
      reconnect: { min: 1, max: 2, factor: 2, jitter: 0, maxRetries: 1, minUptime: 1, refusedWeight: 0.5 },
      queue: { max: 1 },
      auth: () => undefined,
      logger: () => {},
    })
    expect(connection.state).toBe('idle')
  })

  it('refuses a reconnect.refusedWeight outside 0…1 with INVALID_OPTION', () => {
    for (const refusedWeight of [-0.1, 1.5, Number.NaN, '0.5']) {
      expect(() => createConnection({ url: 'wss://example.com/ws', platform: host, reconnect: { refusedWeight } as never })).toThrow(
        expect.objectContaining({ code: 'INVALID_OPTION' }),
      )
    }
  })

  it('suggests only names that are close', () => {
    expect(nearestKey('colour', ['color', 'url'])).toBe('color')
    expect(nearestKey('banana', ['url', 'platform', 'header'])).toBeUndefined()
  })
})
