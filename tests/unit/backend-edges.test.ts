/** The backend's input edges, without sockets: request targets, the MQTT packet size guard, the origin policy. */
import mqttPacket from 'mqtt-packet'
import { describe, expect, it } from 'vitest'
import { createPacketGuard } from '../../server/broker/ws-stream'
import { createOriginPolicy } from '../../server/http/origins'
import { parseTarget } from '../../server/http/request'

describe('parseTarget', () => {
  it('splits paths and queries that new URL() throws on, and refuses what is not a path', () => {
    expect(parseTarget('//a:b')).toMatchObject({ pathname: '//a:b' })
    expect(parseTarget('//[')).toMatchObject({ pathname: '//[' })
    expect(parseTarget('//localhost:99999/')).toMatchObject({ pathname: '//localhost:99999/' })
    const t = parseTarget('/api/x?a=1&b=%zz#frag')!
    expect(t.pathname).toBe('/api/x')
    expect(t.query.get('a')).toBe('1')
    expect(t.query.get('b')).toBe('%zz')
    for (const bad of [undefined, '', '*', 'http://evil/', 'api']) expect(parseTarget(bad), String(bad)).toBeUndefined()
  })
})

describe('packet guard', () => {
  const publish = (bytes: number): Buffer =>
    mqttPacket.generate({ cmd: 'publish', topic: 't', payload: Buffer.alloc(bytes), qos: 0, dup: false, retain: false })

  it('passes packets up to the limit, whatever the chunking', () => {
    const stream = Buffer.concat([publish(10), publish(1000), publish(60_000), publish(0)])
    for (const size of [1, 2, 3, 7, 1000, stream.length]) {
      const guard = createPacketGuard(64 * 1024)
      let over: number | undefined
      for (let i = 0; i < stream.length; i += size) over ??= guard(stream.subarray(i, i + size))
      expect(over, `chunks of ${size}`).toBeUndefined()
    }
  })

  it('reports a packet over the limit from its header alone, split at any byte', () => {
    // A CONNECT header announcing 200 MB, and nothing after it.
    const header = Buffer.from([0x10, 0x80, 0x80, 0x80, 0x64])
    for (let cut = 1; cut < header.length; cut++) {
      const guard = createPacketGuard(64 * 1024)
      expect(guard(header.subarray(0, cut))).toBeUndefined()
      expect(guard(header.subarray(cut))).toBe(5 + 0x64 * 128 ** 3)
    }
    const guard = createPacketGuard(1024)
    expect(guard(publish(100))).toBeUndefined()
    expect(guard(publish(2000).subarray(0, 4))).toBeGreaterThan(1024)
  })

  it('reports a malformed length (a fifth continuation byte)', () => {
    expect(createPacketGuard(1024)(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]))).toBe(Infinity)
  })
})

describe('origin policy', () => {
  const policy = createOriginPolicy(
    { host: '127.0.0.1', allowedOrigins: ['https://app.example'], allowNoOrigin: true, publicOrigin: undefined },
    8090,
  )

  it('allows none, the backend itself, WeChat and configured origins on WebSockets; refuses null and foreign ones', () => {
    for (const ok of [undefined, 'http://127.0.0.1:8090', 'http://localhost:8090', 'https://servicewechat.com', 'https://app.example'])
      expect(policy.allowSocket(ok), String(ok)).toBe(true)
    for (const bad of ['null', 'https://evil.example', 'http://127.0.0.1:8091', 'http://127.0.0.1:8090.evil.example'])
      expect(policy.allowSocket(bad), bad).toBe(false)
    const strict = createOriginPolicy({ host: '127.0.0.1', allowedOrigins: [], allowNoOrigin: false, publicOrigin: undefined }, 8090)
    expect(strict.allowSocket(undefined)).toBe(false)
  })

  it('answers CORS only for configured origins, never with *', () => {
    expect(policy.cors('https://app.example')).toEqual({ 'access-control-allow-origin': 'https://app.example', vary: 'origin' })
    expect(policy.cors('https://evil.example')).toEqual({})
    expect(policy.cors(undefined)).toEqual({})
  })

  it('knows its own Host names only', () => {
    expect(policy.ownHost('127.0.0.1:8090')).toBe(true)
    expect(policy.ownHost('localhost:8090')).toBe(true)
    expect(policy.ownHost('evil.example:8090')).toBe(false)
    expect(policy.ownHost(undefined)).toBe(false)
  })
})
