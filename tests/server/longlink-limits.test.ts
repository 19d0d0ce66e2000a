/**
 * LongLink's refusals and bounds: authentication, session limits, body size, malformed input (each its 4xx, the
 * server serving on), a body cut mid-way, option validation, CORS.
 */
import http from 'node:http'
import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { attachLongLink, type LongLinkOptions } from '../../server/longlink/index'
import { llGet, llPost, RawSession, RawWs } from '../support/longlink-raw'
import { until } from '../support/wait'
import { closeLlServers, llServer } from './longlink-helpers'

afterEach(closeLlServers)

/** Sends `raw` on a fresh TCP connection and resolves with what came back before the server closed it (bounded). */
function rawRequest(port: number, raw: string, endAfterMs?: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    let got = ''
    socket.setEncoding('utf8')
    socket.on('data', (d: string) => (got += d))
    socket.on('error', () => {})
    socket.on('close', () => resolve(got))
    socket.write(raw)
    if (endAfterMs !== undefined) setTimeout(() => socket.destroy(), endAfterMs)
    setTimeout(() => socket.destroy(), 3000)
  })
}

describe('authentication and limits', () => {
  it('authenticate false or throwing → 401 NOT_AUTHORIZED (HTTP) and a 401 on the raw socket (plain WebSocket)', async () => {
    const s = await llServer({
      authenticate: (req) => {
        const token = new URL(req.url!, 'http://x').searchParams.get('token')
        if (token === 'throw') throw new Error('auth backend down')
        return token === 'good' ? `user-${token}` : false
      },
    })
    for (const token of ['bad', 'throw']) {
      const r = await llGet(s.base, { transport: 'polling', open: 1, token })
      expect(r.status).toBe(401)
      expect(r.body).toEqual({ error: 'NOT_AUTHORIZED', message: expect.any(String) })
      const ws = new RawWs(`${s.wsBase}?token=${token}`)
      await expect(ws.opened).rejects.toThrow('upgrade refused: 401')
    }
    expect((await llGet(s.base, { transport: 'polling', open: 1, token: 'good' })).status).toBe(200)
    const ok = new RawWs(`${s.wsBase}?token=good`)
    await ok.opened
    expect(s.conns).toHaveLength(2)
  })

  it('maxSessionsPerClient → 429 per client key (sessions and plain WebSockets); maxSessions → 503; freed on close', async () => {
    const s = await llServer({
      maxSessionsPerClient: 2,
      maxSessions: 3,
      authenticate: (req) => new URL(req.url!, 'http://x').searchParams.get('user') ?? 'anon',
    })
    await RawSession.open(s.base, 'polling', { user: 'a' })
    const ws = new RawWs(`${s.wsBase}?user=a`)
    await ws.opened
    const third = await llGet(s.base, { transport: 'polling', open: 1, user: 'a' })
    expect(third.status).toBe(429)
    expect(third.body.error).toBe('TOO_MANY_SESSIONS')
    await expect(new RawWs(`${s.wsBase}?user=a`).opened).rejects.toThrow('upgrade refused: 429')
    await RawSession.open(s.base, 'polling', { user: 'b' })
    const full = await llGet(s.base, { transport: 'polling', open: 1, user: 'c' })
    expect(full.status).toBe(503)
    expect(full.body.error).toBe('TOO_MANY_SESSIONS')
    expect(s.handle.sessions()).toBe(3)
    ws.close()
    await until(() => s.handle.sessions() === 2, 3000, 'freed')
    expect((await llGet(s.base, { transport: 'polling', open: 1, user: 'a' })).status).toBe(200)
  })

  it('a body over maxRequestBytes → 413 TOO_LARGE (declared or streamed); the server serves on', async () => {
    const s = await llServer({ maxRequestBytes: 1000 })
    const session = await RawSession.open(s.base)
    const big = await session.post(['x'.repeat(2000)])
    expect(big.status).toBe(413)
    expect(big.body.error).toBe('TOO_LARGE')
    // Chunked: no content-length, the bound applies as bytes arrive.
    const port = Number(new URL(s.base).port)
    const chunk = 'y'.repeat(600)
    const reply = await rawRequest(
      port,
      `POST /ll?transport=polling&sid=${session.sid} HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n` +
        `${chunk.length.toString(16)}\r\n${chunk}\r\n${chunk.length.toString(16)}\r\n${chunk}\r\n0\r\n\r\n`,
    )
    expect(reply).toMatch(/^HTTP\/1.1 413/)
    expect((await session.post(['fine'])).body).toEqual({ ack: 1 })
  })

  it('a POST cut mid-body is let go; nothing applied, the session and server carry on', async () => {
    const s = await llServer()
    const session = await RawSession.open(s.base)
    const port = Number(new URL(s.base).port)
    await rawRequest(port, `POST /ll?transport=polling&sid=${session.sid} HTTP/1.1\r\nhost: x\r\ncontent-length: 500\r\n\r\n{"seq":1,"m":["half`, 100)
    expect(s.received.get(s.conns[0].id)).toEqual([])
    expect((await session.post(['whole'])).body).toEqual({ ack: 1 })
    expect(s.received.get(s.conns[0].id)).toEqual(['whole'])
  })
})

describe('malformed input', () => {
  it('each gets its 4xx JSON, nothing applied, and the server keeps serving', async () => {
    const s = await llServer({ hold: 200 }, false)
    const session = await RawSession.open(s.base)
    await s.conns[0].send('one')
    const sid = session.sid
    const get = (q: Record<string, string | number>) => () => llGet(s.base, q)
    const post =
      (body: unknown, q: Record<string, string> = { transport: 'polling', sid }) =>
      () =>
        llPost(s.base, q, body)
    const cases: [string, () => Promise<{ status: number; body: Record<string, unknown> }>, number, string][] = [
      ['no query', get({}), 400, 'BAD_REQUEST'],
      ['unknown transport', get({ transport: 'carrier-pigeon', open: 1 }), 400, 'BAD_REQUEST'],
      ['websocket over HTTP', get({ transport: 'websocket', open: 1 }), 400, 'BAD_REQUEST'],
      ['open=2', get({ transport: 'polling', open: 2 }), 400, 'BAD_REQUEST'],
      ['open with sid', get({ transport: 'polling', open: 1, sid }), 400, 'BAD_REQUEST'],
      ['bad sid', get({ transport: 'polling', sid: 'x', c: 1, ack: 0 }), 400, 'BAD_REQUEST'],
      ['sid with a bad node', get({ transport: 'polling', sid: 'a b.AAAAAAAAAAAAAAAAAAAAAA', c: 1, ack: 0 }), 400, 'BAD_REQUEST'],
      ['missing c', get({ transport: 'polling', sid, ack: 0 }), 400, 'BAD_REQUEST'],
      ['c = 0', get({ transport: 'polling', sid, c: 0, ack: 0 }), 400, 'BAD_REQUEST'],
      ['c not a number', get({ transport: 'polling', sid, c: '1e3', ack: 0 }), 400, 'BAD_REQUEST'],
      ['negative ack', get({ transport: 'polling', sid, c: 1, ack: -1 }), 400, 'BAD_REQUEST'],
      ['huge ack', get({ transport: 'polling', sid, c: 1, ack: '99999999999999999999' }), 400, 'BAD_REQUEST'],
      ['ack beyond what was sent', get({ transport: 'polling', sid, c: 1, ack: 5 }), 400, 'BAD_REQUEST'],
      ['POST without sid', post({ seq: 1, m: [] }, { transport: 'polling' }), 400, 'BAD_REQUEST'],
      ['POST bad transport', post({ seq: 1, m: [] }, { transport: 'nope', sid }), 400, 'BAD_REQUEST'],
      ['body not JSON', post('{nope'), 400, 'BAD_REQUEST'],
      ['body an array', post([1, 2]), 400, 'BAD_REQUEST'],
      ['body null', post('null'), 400, 'BAD_REQUEST'],
      ['empty body', post(''), 400, 'BAD_REQUEST'],
      ['m without seq', post({ m: ['x'] }), 400, 'BAD_REQUEST'],
      ['m not an array', post({ seq: 1, m: 'x' }), 400, 'BAD_REQUEST'],
      ['seq 0', post({ seq: 0, m: ['x'] }), 400, 'BAD_REQUEST'],
      ['seq beyond the cursor', post({ seq: 3, m: ['x'] }), 400, 'BAD_REQUEST'],
      ['item a number', post({ seq: 1, m: [5] }), 400, 'BAD_REQUEST'],
      ['item null', post({ seq: 1, m: [null] }), 400, 'BAD_REQUEST'],
      ['bad base64', post({ seq: 1, m: [{ b: '***' }] }), 400, 'BAD_REQUEST'],
      ['unknown object item', post({ seq: 1, m: [{ x: 1 }] }), 400, 'BAD_REQUEST'],
      ['close not last', post({ seq: 1, m: [{ close: [1000, ''] }, 'x'] }), 400, 'BAD_REQUEST'],
      ['close bad code', post({ seq: 1, m: [{ close: ['a', ''] }] }), 400, 'BAD_REQUEST'],
      ['ack beyond what was sent (POST)', post({ ack: 9 }), 400, 'BAD_REQUEST'],
      ['ack negative', post({ ack: -1 }), 400, 'BAD_REQUEST'],
      ['valid items then a bad one', post({ seq: 1, m: ['applied?', 7] }), 400, 'BAD_REQUEST'],
      ['PUT', () => llPost(s.base, { transport: 'polling', sid }, '{}', { method: 'PUT' }), 405, 'METHOD_NOT_ALLOWED'],
      ['DELETE', () => llGet(s.base, { transport: 'polling', sid }, { method: 'DELETE' }), 405, 'METHOD_NOT_ALLOWED'],
    ]
    for (const [name, call, status, code] of cases) {
      const r = await call()
      expect({ name, status: r.status, error: r.body.error }).toEqual({ name, status, error: code })
      expect(typeof r.body.message).toBe('string')
    }
    expect(s.received.get(s.conns[0].id)).toEqual([])
    expect(s.logs.filter((l) => l.level === 'error')).toEqual([])
    // Still serving, the same session included.
    expect((await session.post(['ok'])).body).toEqual({ ack: 1 })
    await session.pollUntil(1)
    expect(session.received).toEqual(['one'])
  })

  it('bad upgrades: 400 on the raw socket for a malformed sid/c, the server serves on', async () => {
    const s = await llServer()
    for (const q of [
      'transport=websocket&sid=bad&c=1',
      'transport=websocket&sid=zz.AAAAAAAAAAAAAAAAAAAAAA&c=x',
      'transport=sse&sid=zz.AAAAAAAAAAAAAAAAAAAAAA&c=1',
    ]) {
      await expect(new RawWs(`${s.wsBase}?${q}`).opened).rejects.toThrow('upgrade refused: 400')
    }
    const port = Number(new URL(s.base).port)
    // Not a WebSocket handshake at all.
    const reply = await rawRequest(port, 'GET /ll HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n')
    expect(reply).toMatch(/^HTTP\/1.1 400/)
    expect((await llGet(s.base, { transport: 'polling', open: 1 })).status).toBe(200)
  })

  it('a WebSocket frame over maxPayload closes that socket with 1009', async () => {
    const s = await llServer({ maxPayload: 100 })
    const ws = new RawWs(s.wsBase)
    await ws.opened
    ws.send('x'.repeat(101))
    expect((await ws.closed).code).toBe(1009)
    await until(() => s.closes.size === 1)
    expect(s.closes.get(s.conns[0].id)![0]).toBe(1009)
  })
})

describe('options', () => {
  it('a bad option throws a TypeError naming it', () => {
    const server = http.createServer()
    const base: LongLinkOptions = { path: '/ll', onConnection: () => {}, listen: false }
    const bad: [Partial<LongLinkOptions> | Record<string, unknown>, string][] = [
      [{ path: 'll' }, 'path'],
      [{ path: '/ll?x' }, 'path'],
      [{ onConnection: 5 }, 'onConnection'],
      [{ hold: -1 }, 'hold'],
      [{ hold: 1.5 }, 'hold'],
      [{ maxStreamMs: 50_001 }, 'maxStreamMs'],
      [{ idleMs: 0 }, 'idleMs'],
      [{ maxBufferBytes: '1' }, 'maxBufferBytes'],
      [{ maxRequestBytes: 0 }, 'maxRequestBytes'],
      [{ maxSessionsPerClient: 0 }, 'maxSessionsPerClient'],
      [{ maxSessions: Infinity }, 'maxSessions'],
      [{ maxPayload: NaN }, 'maxPayload'],
      [{ wsPingMs: 0 }, 'wsPingMs'],
      [{ node: 'has.dot' }, 'node'],
      [{ node: 'x'.repeat(33) }, 'node'],
      [{ logger: { info() {} } }, 'logger'],
      [{ cors: 'yes' }, 'cors'],
      [{ authenticate: true }, 'authenticate'],
      [{ plainWebSocket: 'no' }, 'plainWebSocket'],
    ]
    for (const [patch, name] of bad) {
      expect(() => attachLongLink(server, { ...base, ...patch } as LongLinkOptions)).toThrow(new RegExp(`"${name}"`))
      expect(() => attachLongLink(server, { ...base, ...patch } as LongLinkOptions)).toThrow(TypeError)
    }
    expect(server.listenerCount('request')).toBe(0)
  })
})

describe('CORS', () => {
  it('answers the preflight 204 with the cors headers, and adds them to every answer', async () => {
    const s = await llServer({
      cors: (origin): Record<string, string> => (origin === 'https://app.example' ? { 'access-control-allow-origin': origin, vary: 'origin' } : {}),
    })
    const pre = await fetch(`${s.base}?transport=polling&open=1`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
    })
    expect(pre.status).toBe(204)
    expect(pre.headers.get('access-control-allow-origin')).toBe('https://app.example')
    expect(pre.headers.get('access-control-allow-methods')).toContain('POST')
    const r = await llGet(s.base, { transport: 'polling', open: 1 }, { headers: { origin: 'https://app.example' } })
    expect(r.headers.get('access-control-allow-origin')).toBe('https://app.example')
    const gone = await llGet(s.base, { transport: 'polling', sid: 'zz.AAAAAAAAAAAAAAAAAAAAAA', c: 1 }, { headers: { origin: 'https://app.example' } })
    expect(gone.status).toBe(410)
    expect(gone.headers.get('access-control-allow-origin')).toBe('https://app.example')
  })
})
