import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { DEFAULT_LIMITS, loadConfig } from '../../server/config'
import { createLogger, createLogLimiter, createLogRing, memoryLogger, redact } from '../../server/log'
import { createTokenService } from '../../server/tokens'

describe('tokens', () => {
  it('issues a token that verifies to the rider id', () => {
    const t = createTokenService('s3cret')
    const { token, expiresAt } = t.issue('alice', 60_000)
    expect(expiresAt).toBeGreaterThan(Date.now())
    expect(t.verify(token)).toEqual({ ok: true, riderId: 'alice', expiresAt })
  })

  it('reports expiry', () => {
    let now = 1_000_000
    const t = createTokenService('s3cret', () => now)
    const { token } = t.issue('bob', 1000)
    now += 999
    expect(t.verify(token).ok).toBe(true)
    now += 1
    expect(t.verify(token)).toEqual({ ok: false, reason: 'expired' })
  })

  it('rejects tampered tokens and other secrets as bad-signature', () => {
    const t = createTokenService('s3cret')
    const { token } = t.issue('alice', 60_000)
    const [body, sig] = token.split('.')
    const forged = Buffer.from(JSON.stringify({ sub: 'mallory', exp: Date.now() + 60_000 })).toString('base64url')
    expect(t.verify(`${forged}.${sig}`)).toEqual({ ok: false, reason: 'bad-signature' })
    const flipped = sig.slice(0, -2) + (sig.at(-2) === 'A' ? 'B' : 'A') + sig.at(-1)
    expect(t.verify(`${body}.${flipped}`)).toEqual({ ok: false, reason: 'bad-signature' })
    expect(createTokenService('other').verify(token)).toEqual({ ok: false, reason: 'bad-signature' })
  })

  it('rejects malformed input', () => {
    const t = createTokenService('s3cret')
    for (const bad of ['', 'abc', 'a.b.c', 'no spaces.x y', 42, null, undefined, 'x'.repeat(5000)]) {
      expect(t.verify(bad)).toEqual({ ok: false, reason: 'malformed' })
    }
    // a validly signed body that is not our JSON claims
    const key = createTokenService('k')
    const { token } = key.issue('a', 1000)
    expect(key.verify(token).ok).toBe(true)
  })

  it('config: the token secret is generated once into the data dir and read back; TOKEN_SECRET wins; required in production', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'longlink-config-'))
    const a = loadConfig({ DATA_DIR: dir })
    const b = loadConfig({ DATA_DIR: dir })
    expect(a.tokenSecret.length).toBeGreaterThanOrEqual(32)
    expect(a.tokenSecret.equals(b.tokenSecret)).toBe(true)
    expect((fs.statSync(path.join(dir, 'token-secret')).mode & 0o777).toString(8)).toBe('600')
    expect(loadConfig({ DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'longlink-config-')) }).tokenSecret.equals(a.tokenSecret)).toBe(false)
    expect(loadConfig({ DATA_DIR: dir, TOKEN_SECRET: 'x' }).tokenSecret.toString()).toBe('x')
    expect(() => loadConfig({ DATA_DIR: dir, NODE_ENV: 'production', ADMIN_PASSWORD: 'p' })).toThrow(/TOKEN_SECRET/)
    expect(() => loadConfig({ DATA_DIR: dir, NODE_ENV: 'production', TOKEN_SECRET: 's' })).toThrow(/ADMIN_PASSWORD/)
    // The admin password too: generated once, kept, never the same for two data dirs.
    expect(a.adminPassword).toBe(b.adminPassword)
    expect(a.adminPasswordFile).toBe(path.join(dir, 'admin-password'))
    expect(loadConfig({ DATA_DIR: dir, ADMIN_PASSWORD: 'given' })).toMatchObject({ adminPassword: 'given', adminPasswordFile: undefined })
  })

  it('config: defaults, and the demo password only on loopback', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'longlink-config-'))
    const a = loadConfig({ DATA_DIR: dir })
    expect(a.host).toBe('127.0.0.1')
    expect(a.port).toBe(8090)
    expect(a.demoPassword).toBe('longlink-demo')
    expect(a.wechatDevLogin).toBe(true)
    expect(a.limits).toEqual(DEFAULT_LIMITS)
    expect(loadConfig({ DATA_DIR: dir, PORT: '0' }).port).toBe(0)
    expect(a.brokerUrl).toBeUndefined()
    expect(loadConfig({ DATA_DIR: dir, BROKER_URL: 'mqtt://x:1883' }).brokerUrl).toBe('mqtt://x:1883')
    expect(() => loadConfig({ DATA_DIR: dir, PORT: 'abc' })).toThrow(/PORT/)
    const lan = loadConfig({ DATA_DIR: dir, HOST: '0.0.0.0' })
    expect(lan.demoPassword).toBeUndefined()
    expect(lan.wechatDevLogin).toBe(false)
    expect(loadConfig({ DATA_DIR: dir, HOST: '0.0.0.0', DEMO_PASSWORD: 'a-long-one', WECHAT_DEV_LOGIN: '1' })).toMatchObject({
      demoPassword: 'a-long-one',
      wechatDevLogin: false,
    })
    expect(() => loadConfig({ DATA_DIR: dir, DEMO_PASSWORD: 'short' })).toThrow(/DEMO_PASSWORD/)
    expect(loadConfig({ DATA_DIR: dir, LIMIT_MQTT_MAX_PACKET_BYTES: '1024' }).limits.mqttMaxPacketBytes).toBe(1024)
    expect(() => loadConfig({ DATA_DIR: dir, LIMIT_HTTP_MAX_BODY_BYTES: '-1' })).toThrow(/LIMIT_HTTP_MAX_BODY_BYTES/)
  })
})

describe('log redaction', () => {
  const token = createTokenService('s').issue('alice', 60_000).token

  it('masks secret-named fields, bearer headers, ?token= and token-shaped text', () => {
    const out = redact({
      password: 'hunter2',
      token,
      headers: { Authorization: `Bearer ${token}` },
      url: `/mqtt?token=${token}&x=1`,
      note: `user sent ${token} in a message`,
      nested: [{ secret: 'abc' }],
      rider: 'alice',
      err: new Error(`bad token ${token}`),
    })
    const text = JSON.stringify(out)
    expect(text).not.toContain(token)
    expect(text).not.toContain('hunter2')
    expect(text).not.toContain('"abc"')
    expect(text).toContain('"rider":"alice"')
    expect(text).toContain('x=1')
    expect(JSON.stringify(redact({ broker: 'mqtt://svc:S3cret@127.0.0.1:1883', note: 'failed to reach ws://a:b@host/mqtt' }))).not.toMatch(
      /S3cret|:b@/,
    )
  })

  it('writes one JSON line per entry to the sink, redacted', () => {
    const lines: string[] = []
    const logger = createLogger((l) => lines.push(l))
    logger.warn('mqtt.refused', { username: 'alice', password: token })
    logger.info(`event with ${token}`)
    expect(lines).toHaveLength(2)
    for (const line of lines) {
      expect(line).not.toContain(token)
      const entry = JSON.parse(line)
      expect(typeof entry.time).toBe('string')
    }
    expect(JSON.parse(lines[0])).toMatchObject({ level: 'warn', event: 'mqtt.refused', username: 'alice', password: '***' })
  })

  it('memoryLogger keeps entries', () => {
    const m = memoryLogger()
    m.info('x', { a: 1 })
    expect(m.entries()[0]).toMatchObject({ event: 'x', a: 1 })
  })

  it('a log ring keeps the last lines (redacted) and tells listeners', () => {
    const inner = memoryLogger()
    const ring = createLogRing(3)
    const logger = ring.wrap(inner)
    const heard: unknown[] = []
    const off = ring.subscribe((e) => heard.push(e.event))
    for (let i = 0; i < 5; i++) logger.info(`e${i}`, { password: 'hunter2' })
    off()
    logger.info('after')
    expect(ring.recent().map((e) => e.event)).toEqual(['e3', 'e4', 'after'])
    expect(heard).toEqual(['e0', 'e1', 'e2', 'e3', 'e4'])
    expect(inner.lines).toHaveLength(6)
    expect(JSON.stringify(ring.recent())).not.toContain('hunter2')
  })

  it('a log limiter writes at most N lines per event per window, then one summary line', () => {
    vi.useFakeTimers()
    try {
      const m = memoryLogger()
      const limiter = createLogLimiter(m, 3, 10_000)
      for (let i = 0; i < 1000; i++) limiter.warn('acl.subscribe.refused', { i })
      limiter.warn('other', {})
      expect(m.entries().filter((e) => e.event === 'acl.subscribe.refused')).toHaveLength(3)
      vi.advanceTimersByTime(10_000)
      expect(m.entries().filter((e) => e.event === 'log.suppressed')).toEqual([
        expect.objectContaining({ suppressedEvent: 'acl.subscribe.refused', count: 997, windowMs: 10_000 }),
      ])
      limiter.warn('acl.subscribe.refused', {})
      expect(m.entries().filter((e) => e.event === 'acl.subscribe.refused')).toHaveLength(4)
      limiter.close()
    } finally {
      vi.useRealTimers()
    }
  })
})
