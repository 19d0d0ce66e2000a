import { describe, expect, it } from 'vitest'
import { loadConfig } from '../../server/config'
import { createLogger, memoryLogger, redact } from '../../server/log'
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

  it('config: random secret per process unless TOKEN_SECRET; defaults', () => {
    const a = loadConfig({})
    const b = loadConfig({})
    expect(a.tokenSecret.equals(b.tokenSecret)).toBe(false)
    expect(loadConfig({ TOKEN_SECRET: 'x' }).tokenSecret.toString()).toBe('x')
    expect(a.host).toBe('127.0.0.1')
    expect(a.port).toBe(8090)
    expect(loadConfig({ PORT: '0' }).port).toBe(0)
    expect(a.brokerUrl).toBeUndefined()
    expect(loadConfig({ BROKER_URL: 'mqtt://x:1883' }).brokerUrl).toBe('mqtt://x:1883')
    expect(() => loadConfig({ PORT: 'abc' })).toThrow(/PORT/)
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
})
