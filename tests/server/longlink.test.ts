/**
 * server/longlink over real sockets: the plain WebSocket, the session handshake, long-polling, polling, SSE and POST,
 * repeats and lost answers, carrier numbers, and the conn API. Driven by the raw protocol client of
 * tests/support/longlink-raw.ts against a plain Node HTTP server.
 */
import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { llGet, llPost, RawSession, RawWs } from '../support/longlink-raw'
import { sleep, until } from '../support/wait'
import { closeLlServers, llServer } from './longlink-helpers'

afterEach(closeLlServers)

describe('plain WebSocket', () => {
  it('echoes text and bytes, answers ping with pong itself, and reports the transport', async () => {
    const s = await llServer()
    const ws = new RawWs(s.wsBase + '?token=x')
    await ws.opened
    ws.send('hello')
    expect(await ws.next()).toEqual({ data: 'hello', binary: false })
    ws.send(Buffer.from([0, 1, 2, 255]))
    const bytes = await ws.next()
    expect(bytes.binary).toBe(true)
    expect([...(bytes.data as Buffer)]).toEqual([0, 1, 2, 255])
    ws.send('ping')
    expect(await ws.next()).toEqual({ data: 'pong', binary: false })
    expect(s.conns).toHaveLength(1)
    expect(s.conns[0].transport).toBe('websocket')
    const got = s.received.get(s.conns[0].id)!
    expect(got[0]).toBe('hello')
    expect(got[1]).toBeInstanceOf(Uint8Array)
    expect(got).toHaveLength(2) // the ping never reached the app
    expect(s.handle.sessions()).toBe(1)
    ws.close(4321, 'bye')
    await until(() => s.closes.has(s.conns[0].id), 3000, 'conn close')
    expect(s.closes.get(s.conns[0].id)).toEqual([4321, 'bye'])
    await until(() => s.handle.sessions() === 0, 3000, 'uncounted')
  })

  it('conn.close sends a close frame with the code and reason; send after close rejects CLOSED', async () => {
    const s = await llServer()
    const ws = new RawWs(s.wsBase)
    await ws.opened
    await until(() => s.conns.length === 1)
    const conn = s.conns[0]
    await conn.send('first')
    conn.close(4000, 'done')
    expect(await ws.next()).toEqual({ data: 'first', binary: false })
    expect(await ws.closed).toEqual({ code: 4000, reason: 'done' })
    expect(s.closes.get(conn.id)).toEqual([4000, 'done'])
    await expect(conn.send('late')).rejects.toMatchObject({ code: 'CLOSED' })
    expect(() => conn.close(1001)).toThrow(TypeError)
    expect(() => conn.close(2999)).toThrow(TypeError)
  })

  it('send rejects INVALID_DATA for other types; a throwing handler is logged and changes nothing', async () => {
    const s = await llServer({
      onConnection(conn) {
        conn.on('message', () => {
          throw new Error('handler bug')
        })
        conn.on('message', (m) => void conn.send(m))
      },
    })
    const ws = new RawWs(s.wsBase)
    await ws.opened
    ws.send('a')
    expect((await ws.next()).data).toBe('a')
    ws.send('b')
    expect((await ws.next()).data).toBe('b')
    expect(s.logs.filter((l) => l.event === 'longlink.handler_error')).toHaveLength(2)
    await expect(s.conns[0].send(42 as never)).rejects.toMatchObject({ code: 'INVALID_DATA' })
    await expect(s.conns[0].send(new Uint16Array([1, 2]))).resolves.toBeUndefined()
    expect([...((await ws.next()).data as Buffer)]).toEqual([1, 0, 2, 0])
  })

  it('cuts a WebSocket that stops answering protocol pings', async () => {
    const s = await llServer({ wsPingMs: 100 })
    const ws = new RawWs(s.wsBase)
    await ws.opened
    // ws answers pings automatically; without its socket reading, no pong goes back.
    ;(ws.ws as unknown as { _socket: import('node:net').Socket })._socket.pause()
    await until(() => s.closes.size === 1, 3000, 'dead link cut')
    expect(s.closes.get(s.conns[0].id)![0]).toBe(1006)
  })
})

describe('session handshake and polls', () => {
  it('opens a session with the limits in the answer; the conn has its own id, not the sid', async () => {
    const s = await llServer({ hold: 500, node: 'n1' })
    const r = await llGet(s.base, { transport: 'long-polling', open: 1 })
    expect(r.status).toBe(200)
    expect(r.headers.get('content-type')).toBe('application/json; charset=utf-8')
    expect(r.headers.get('cache-control')).toBe('no-store')
    expect(r.body).toEqual({
      sid: expect.stringMatching(/^n1\.[A-Za-z0-9_-]{22,}$/),
      node: 'n1',
      hold: 500,
      maxStreamMs: 45_000,
      maxRequestBytes: 1048576,
      idleMs: 60_000,
    })
    expect(s.conns).toHaveLength(1)
    expect(s.conns[0].transport).toBe('long-polling')
    expect(s.conns[0].id).not.toBe(r.body.sid)
    expect(s.conns[0].remoteAddress).toBe('127.0.0.1')
    expect(JSON.stringify(s.logs)).not.toContain(r.body.sid)
  })

  it('holds a long-poll until there is a message, then answers with it', async () => {
    const s = await llServer({ hold: 3000 })
    const session = await RawSession.open(s.base)
    const conn = s.conns[0]
    // The first poll of a carrier run is answered at once (it proves the carrier); the next one is held.
    expect((await session.poll()).body).toEqual({ seq: 1, m: [], ack: 0 })
    const started = Date.now()
    const polled = session.poll()
    await sleep(150)
    await conn.send('one')
    await conn.send(Buffer.from('two'))
    const r = await polled
    expect(Date.now() - started).toBeLessThan(2000)
    expect(r.status).toBe(200)
    expect(r.body.seq).toBe(1)
    expect(r.body.ack).toBe(0)
    expect(session.received).toEqual(['one', Buffer.from('two')])
  })

  it('answers an empty packet after `hold` when there is nothing to send', async () => {
    const s = await llServer({ hold: 200 })
    const session = await RawSession.open(s.base)
    await session.poll()
    const started = Date.now()
    const r = await session.poll()
    expect(Date.now() - started).toBeGreaterThanOrEqual(180)
    expect(r.body).toEqual({ seq: 1, m: [], ack: 0 })
  })

  it('answers a short poll at once, and the transport follows the carrier', async () => {
    const s = await llServer({ hold: 5000 })
    const session = await RawSession.open(s.base, 'long-polling')
    const conn = s.conns[0]
    const changes: unknown[] = []
    conn.on('transport', (c) => changes.push(c))
    const started = Date.now()
    const r = await session.poll({ transport: 'polling' })
    expect(Date.now() - started).toBeLessThan(1000)
    expect(r.body).toEqual({ seq: 1, m: [], ack: 0 })
    expect(conn.transport).toBe('polling')
    expect(changes).toEqual([{ from: 'long-polling', to: 'polling' }])
    await conn.send('x')
    await session.poll({ transport: 'polling' })
    expect(session.received).toEqual(['x'])
  })

  it('POST applies messages once in order, acknowledges repeats without applying them, answers ping with pong', async () => {
    const s = await llServer({ hold: 300 }, false)
    const session = await RawSession.open(s.base)
    const got = () => s.received.get(s.conns[0].id)!
    expect((await session.post(['a', Buffer.from([1, 2])])).body).toEqual({ ack: 2 })
    // The same packet again (its answer was lost): acknowledged, not applied twice.
    expect((await session.post([], { packet: { seq: 1, m: ['a', { b: 'AQI=' }], ack: 0 } })).body).toEqual({ ack: 2 })
    // Overlapping: 2 is a repeat, 3 is new.
    expect((await session.post([], { packet: { seq: 2, m: [{ b: 'AQI=' }, 'c'], ack: 0 } })).body).toEqual({ ack: 3 })
    session.seq = 3
    expect(got()).toEqual(['a', Buffer.from([1, 2]), 'c'])
    expect(got()[1]).toBeInstanceOf(Uint8Array)
    await session.post(['ping'])
    expect(got()).toHaveLength(3)
    await session.pollUntil(1)
    expect(session.received).toEqual(['pong'])
  })

  it('a lost poll answer is repaired by polling again with the old ack: nothing lost, nothing twice', async () => {
    const s = await llServer({ hold: 2000 }, false)
    const session = await RawSession.open(s.base)
    const conn = s.conns[0]
    for (let i = 1; i <= 5; i++) await conn.send(`m${i}`)
    // The answer is read but "lost": not taken, the cursor stays.
    const lost = await session.poll({ take: false })
    expect(lost.body.m).toHaveLength(5)
    // A poll aborted mid-hold (the client gave up on it).
    await conn.send('m6')
    const again = await session.poll()
    expect(again.body.seq).toBe(1)
    expect(session.received).toEqual(['m1', 'm2', 'm3', 'm4', 'm5', 'm6'])
    const abort = new AbortController()
    const held = session.poll({ signal: abort.signal }).catch(() => 'aborted')
    await sleep(100)
    abort.abort()
    expect(await held).toBe('aborted')
    await conn.send('m7')
    await session.pollUntil(7)
    expect(session.received.slice(6)).toEqual(['m7'])
    // The client's own messages over repeated POSTs: the conn sees each once.
    await session.post(['u1', 'u2'])
    await session.post([], { packet: { seq: 1, m: ['u1', 'u2', 'u3'], ack: session.ack } })
    expect(s.received.get(conn.id)).toEqual(['u1', 'u2', 'u3'])
  })

  it('acks free the buffer: send waits at maxBufferBytes, then resumes; BUFFER_FULL past another maxBufferBytes', async () => {
    const s = await llServer({ hold: 200, maxBufferBytes: 100 }, false)
    const session = await RawSession.open(s.base)
    const conn = s.conns[0]
    await conn.send('x'.repeat(60))
    await conn.send('y'.repeat(60)) // admitted: under the bound before it
    let third = false
    const waiting = conn.send('z'.repeat(60)).then(() => (third = true))
    await expect(conn.send('w'.repeat(60))).rejects.toMatchObject({ code: 'BUFFER_FULL' })
    await expect(conn.send('v'.repeat(101))).rejects.toMatchObject({ code: 'BUFFER_FULL' })
    await sleep(50)
    expect(third).toBe(false)
    await session.poll() // takes 2; its ack comes with the next request
    expect(third).toBe(false)
    await session.poll()
    await waiting
    expect(session.received.map((m) => String(m)[0])).toEqual(['x', 'y', 'z'])
  })

  it('a newer carrier ends the held poll (answered empty); a smaller c is STALE', async () => {
    const s = await llServer({ hold: 5000 })
    const session = await RawSession.open(s.base)
    await session.poll({ c: 1 })
    const first = session.poll({ c: 1 })
    await sleep(100)
    // The first poll of the newer run is answered at once, and ends the held one.
    const second = session.poll({ c: 2 })
    const r1 = await first
    expect(r1.status).toBe(200)
    expect(r1.body.m).toEqual([])
    expect((await second).body.m).toEqual([])
    const stale = await session.poll({ c: 1 })
    expect(stale.status).toBe(409)
    expect(stale.body.error).toBe('STALE')
    const third = session.poll({ c: 2 })
    await sleep(50)
    await s.conns[0].send('after')
    expect((await third).body.m).toEqual(['after'])
  })

  it('polls of one long-polling run share c: each ends the one before', async () => {
    const s = await llServer({ hold: 5000 })
    const session = await RawSession.open(s.base)
    const a = session.poll({ c: 1 })
    await sleep(50)
    const b = session.poll({ c: 1 })
    expect((await a).body.m).toEqual([])
    await s.conns[0].send('x')
    expect((await b).body.m).toEqual(['x'])
  })

  it('an unknown sid is 410 SESSION_GONE, for polls, streams and POSTs', async () => {
    const s = await llServer()
    const sid = 'nope.AAAAAAAAAAAAAAAAAAAAAA'
    for (const r of [
      await llGet(s.base, { transport: 'long-polling', sid, c: 1, ack: 0 }),
      await llGet(s.base, { transport: 'sse', sid, c: 1, ack: 0 }),
      await llPost(s.base, { transport: 'polling', sid }, { seq: 1, m: ['x'] }),
    ]) {
      expect(r.status).toBe(410)
      expect(r.body).toEqual({ error: 'SESSION_GONE', message: expect.any(String) })
    }
  })
})

describe('SSE', () => {
  it('says hello first, then each message with id = seq, and ends at maxStreamMs; the next stream resumes', async () => {
    const s = await llServer({ maxStreamMs: 400, sseHeartbeatMs: 100 })
    const session = await RawSession.open(s.base, 'sse')
    const conn = s.conns[0]
    await session.post(['up'])
    const stream = session.stream()
    await stream.until(() => stream.events.length >= 1, 3000, 'hello')
    expect(stream.status).toBe(200)
    expect(stream.headers!.get('content-type')).toMatch(/^text\/event-stream/)
    expect(stream.headers!.get('cache-control')).toMatch(/no-store/)
    expect(stream.events[0]).toEqual({ event: 'hello', data: '{"ack":1}' })
    // `up` was echoed: message 1.
    await conn.send(Buffer.from([9]))
    await conn.close(4100, 'bye now')
    await stream.until(() => stream.messages().length >= 3, 3000, 'messages')
    expect(stream.messages()).toEqual([
      { id: '1', data: '"up"' },
      { id: '2', data: '{"b":"CQ=="}' },
      { id: '3', data: '{"close":[4100,"bye now"]}' },
    ])
    await stream.until(() => stream.comments >= 1, 3000, 'a heartbeat')
    await stream.ended
    // The client acknowledged nothing: the next stream (same c) sends everything again.
    const next = session.stream()
    await next.until(() => next.messages().length >= 3, 3000, 'resent')
    expect(next.messages().map((e) => e.id)).toEqual(['1', '2', '3'])
    next.close()
    // Acknowledging the close ends the session.
    await session.post([], { packet: { ack: 3 } })
    expect((await session.poll()).status).toBe(410)
  })

  it('a stream after an ack sends only what follows it', async () => {
    const s = await llServer({ maxStreamMs: 5000 }, false)
    const session = await RawSession.open(s.base, 'sse')
    for (let i = 1; i <= 4; i++) await s.conns[0].send(`m${i}`)
    const stream = session.stream({ ack: 2 })
    await stream.until(() => stream.messages().length >= 2, 3000, 'messages')
    expect(stream.messages()).toEqual([
      { id: '3', data: '"m3"' },
      { id: '4', data: '"m4"' },
    ])
    // A newer carrier ends the stream.
    const poll = session.poll({ c: 2, ack: 4, take: false })
    await stream.ended
    expect((await poll).body).toEqual({ seq: 5, m: [], ack: 0 })
    const next = session.poll({ c: 2, ack: 4, take: false })
    await sleep(50)
    await s.conns[0].send('m5')
    expect((await next).body).toEqual({ seq: 5, m: ['m5'], ack: 0 })
  })

  it('a client that stops reading: the stream waits for the socket to drain, then goes on without a gap', async () => {
    const s = await llServer({ maxStreamMs: 20_000, maxBufferBytes: 8 * 1024 * 1024 }, false)
    const session = await RawSession.open(s.base, 'sse')
    const conn = s.conns[0]
    const socket = net.connect(Number(new URL(s.base).port), '127.0.0.1')
    socket.on('error', () => {})
    let text = ''
    socket.setEncoding('utf8')
    socket.write(`GET /ll?transport=sse&sid=${session.sid}&c=1&ack=0 HTTP/1.1\r\nhost: x\r\n\r\n`)
    socket.pause()
    const total = 3000
    const payload = 'p'.repeat(1000)
    for (let i = 1; i <= total; i++) await conn.send(`${i}:${payload}`)
    await sleep(200)
    socket.on('data', (d: string) => (text += d))
    socket.resume()
    await until(() => text.includes(`id: ${total}\n`), 10_000, 'every event')
    const ids = [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]))
    expect(ids).toEqual(Array.from({ length: total }, (_, i) => i + 1))
    socket.destroy()
  })
})
