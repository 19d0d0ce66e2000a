/**
 * How LongLink connections end, and how the handle mounts and unmounts: closes from either side, idle expiry,
 * handle.close() (sessions ended, listeners restored), a host that dispatches itself, and `plainWebSocket: false`.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocketServer } from 'ws'
import { attachLongLink, type LongLinkConnection } from '../../server/longlink/index'
import { llGet, RawSession, RawWs } from '../support/longlink-raw'
import { sleep, until } from '../support/wait'
import { closeLlServers, hostHandler, llServer } from './longlink-helpers'

afterEach(closeLlServers)

describe('closing', () => {
  it('conn.close on the server: the close item follows the messages sent before it; acknowledging it ends the session', async () => {
    const s = await llServer({ hold: 300 }, false)
    const session = await RawSession.open(s.base)
    const conn = s.conns[0]
    await conn.send('last words')
    conn.close(4200, 'kicked')
    expect(s.closes.get(conn.id)).toEqual([4200, 'kicked'])
    await expect(conn.send('too late')).rejects.toMatchObject({ code: 'CLOSED' })
    await session.pollUntil(2)
    expect(session.received).toEqual(['last words', { close: [4200, 'kicked'] }])
    expect(s.handle.sessions()).toBe(1)
    // The client's messages after the server closed are acknowledged, not delivered.
    expect((await session.post([], { packet: { seq: 1, m: ['ignored'], ack: 1 } })).body).toEqual({ ack: 1 })
    expect(s.received.get(conn.id)).toEqual([])
    // The next request carries the ack of the close item: the session is gone.
    expect((await session.poll()).status).toBe(410)
    expect(s.handle.sessions()).toBe(0)
  })

  it('the client closes with a close item: the conn emits close with its code and reason', async () => {
    const s = await llServer({ hold: 5000 })
    const session = await RawSession.open(s.base)
    const held = session.poll()
    await sleep(50)
    expect((await session.post(['bye', { close: [4001, 'user left'] }])).body).toEqual({ ack: 2 })
    expect(s.closes.get(s.conns[0].id)).toEqual([4001, 'user left'])
    expect(s.received.get(s.conns[0].id)).toEqual(['bye'])
    // The held poll is answered when the session ends.
    expect((await held).status).toBe(200)
    expect((await session.poll()).status).toBe(410)
    expect(s.handle.sessions()).toBe(0)
  })

  it('a session with no carrier and no request expires after idleMs: close (1006, expired), then 410', async () => {
    const s = await llServer({ idleMs: 300, hold: 100 }, false)
    const session = await RawSession.open(s.base)
    const conn = s.conns[0]
    // Kept alive while it polls.
    for (let i = 0; i < 5; i++) await session.poll()
    expect(s.closes.has(conn.id)).toBe(false)
    await until(() => s.closes.has(conn.id), 3000, 'expiry')
    expect(s.closes.get(conn.id)).toEqual([1006, 'expired'])
    expect((await session.poll()).status).toBe(410)
    await expect(conn.send('x')).rejects.toMatchObject({ code: 'CLOSED' })
    expect(s.handle.sessions()).toBe(0)
  })

  it('a send waiting for buffer room is rejected CLOSED when the session expires', async () => {
    const s = await llServer({ idleMs: 200, maxBufferBytes: 10 }, false)
    await RawSession.open(s.base)
    const conn = s.conns[0]
    await conn.send('0123456789')
    const waiting = conn.send('abc')
    await expect(waiting).rejects.toMatchObject({ code: 'CLOSED' })
    expect(s.closes.get(conn.id)).toEqual([1006, 'expired'])
  })
})

describe('handle.close()', () => {
  it('ends every connection with 1001, answers held polls with the close item, restores the host listeners', async () => {
    const s = await llServer({ hold: 5000 })
    const other = async () => (await fetch(`${s.origin}/other?x=1`)).text()
    expect(await other()).toBe('host:/other?x=1')
    const session = await RawSession.open(s.base)
    // The first poll of a carrier run is answered at once; the next one is held.
    expect((await session.poll()).body.m).toEqual([])
    const held = session.poll()
    const stream = (await RawSession.open(s.base, 'sse')).stream()
    await stream.until(() => stream.events.length > 0, 3000, 'hello')
    const ws = new RawWs(s.wsBase)
    await ws.opened
    expect(s.handle.sessions()).toBe(3)

    await s.handle.close()
    expect([...s.closes.values()]).toEqual([
      [1001, 'server closing'],
      [1001, 'server closing'],
      [1001, 'server closing'],
    ])
    expect((await held).body.m).toEqual([{ close: [1001, 'server closing'] }])
    await stream.ended
    expect(stream.messages().map((e) => e.data)).toEqual(['{"close":[1001,"server closing"]}'])
    expect((await ws.closed).code).toBe(1001)
    expect(s.handle.sessions()).toBe(0)
    // Detached: the host serves every path again, its own listener only, and the server still listens.
    expect(s.server.listeners('request')).toEqual([hostHandler])
    expect(s.server.listenerCount('upgrade')).toBe(0)
    expect(await other()).toBe('host:/other?x=1')
    expect(await (await fetch(s.base)).text()).toBe('host:/ll')
  })

  it('with listen: false the host dispatches itself; after close, requests it still passes get 503 CLOSING', async () => {
    const conns: LongLinkConnection[] = []
    const handle = attachLongLink(http.createServer(), {
      path: '/ll',
      listen: false,
      hold: 100,
      onConnection: (conn) => {
        conns.push(conn)
        conn.on('message', (m) => void conn.send(m))
      },
    })
    const server = http.createServer((req, res) => {
      if (!handle.handleRequest(req, res)) hostHandler(req, res)
    })
    server.on('upgrade', (req, socket, head) => {
      if (!handle.handleUpgrade(req, socket, head)) socket.destroy()
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
      expect(server.listenerCount('request')).toBe(1)
      const session = await RawSession.open(`${origin}/ll`)
      await session.post(['hi'])
      await session.pollUntil(1)
      expect(session.received).toEqual(['hi'])
      const ws = new RawWs(`${origin.replace('http', 'ws')}/ll`)
      await ws.opened
      ws.send('yo')
      expect((await ws.next()).data).toBe('yo')
      expect(await (await fetch(`${origin}/elsewhere`)).text()).toBe('host:/elsewhere')
      await handle.close()
      const r = await llGet(`${origin}/ll`, { transport: 'polling', open: 1 })
      expect(r.status).toBe(503)
      expect(r.body.error).toBe('CLOSING')
      await expect(new RawWs(`${origin.replace('http', 'ws')}/ll`).opened).rejects.toThrow('upgrade refused: 503')
    } finally {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  })

  it('plainWebSocket: false leaves plain upgrades at the path to the host; session WebSockets are still taken', async () => {
    const server = http.createServer(hostHandler)
    const hostWss = new WebSocketServer({ noServer: true })
    hostWss.on('connection', (ws) => ws.send('from the host'))
    server.on('upgrade', (req, socket, head) => hostWss.handleUpgrade(req, socket, head, (ws) => hostWss.emit('connection', ws, req)))
    const previous = server.listeners('upgrade')
    const handle = attachLongLink(server, { path: '/ll', plainWebSocket: false, hold: 100, onConnection: () => {} })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const port = (server.address() as AddressInfo).port
      const plain = new RawWs(`ws://127.0.0.1:${port}/ll`)
      expect((await plain.next()).data).toBe('from the host')
      const session = await RawSession.open(`http://127.0.0.1:${port}/ll`)
      const joined = new RawWs(session.joinUrl({ c: 2 }))
      expect(await joined.nextJson()).toEqual({ hello: 1, ack: 0 })
      plain.close()
      joined.close()
      await handle.close()
      expect(server.listeners('upgrade')).toEqual(previous)
    } finally {
      hostWss.close()
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  })

  it('restores listeners added before and after attaching, in place', async () => {
    const server = http.createServer()
    const a = () => {}
    const b = () => {}
    server.on('request', a)
    const handle = attachLongLink(server, { path: '/ll', onConnection: () => {} })
    server.on('request', b)
    expect(server.listenerCount('request')).toBe(2)
    await handle.close()
    expect(server.listeners('request')).toEqual([a, b])
  })
})
