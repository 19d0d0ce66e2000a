/**
 * A WebSocket joining a LongLink session: hello, upgrade (make-before-break), packets both ways, 4410 for an unknown
 * session, 4001 when replaced, and no message lost or doubled while thousands are sent during the switch.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { decodeItem, RawSession, RawWs, type Json, type RawMessage } from '../support/longlink-raw'
import { sleep, until } from '../support/wait'
import { closeLlServers, llServer } from './longlink-helpers'

afterEach(closeLlServers)

/** Takes a session WebSocket packet's messages into the session (repeats skipped). */
function takeWs(session: RawSession, packet: Json): RawMessage[] {
  return packet.m ? session.take(packet) : []
}

describe('a WebSocket joining a session', () => {
  it('hello, then upgrade: the held poll is answered, the transport changes, messages flow both ways with acks', async () => {
    const s = await llServer({ hold: 5000 }, false)
    const session = await RawSession.open(s.base, 'long-polling')
    const conn = s.conns[0]
    await session.post(['before'])
    await conn.send('m1')
    await session.pollUntil(1)
    const held = session.poll({ c: 1 })
    await sleep(50)

    const ws = new RawWs(session.joinUrl({ c: 2 }))
    expect(await ws.nextJson()).toEqual({ hello: 1, ack: 1 })
    // Nothing moves before the upgrade: the poll is still the carrier.
    await sleep(100)
    expect(conn.transport).toBe('long-polling')
    await conn.send('m2')
    const r = await held
    expect(r.body.m).toEqual(['m2'])

    const changes: unknown[] = []
    conn.on('transport', (c) => changes.push(c))
    const heldAgain = session.poll({ c: 1 })
    await sleep(50)
    ws.send({ upgrade: 1, ack: session.ack })
    // The poll the upgrade replaced is answered at once, empty.
    expect((await heldAgain).body).toEqual({ seq: 3, m: [], ack: 1 })
    await conn.send('m3')
    const first = await ws.nextJson()
    expect(first).toEqual({ seq: 3, m: ['m3'], ack: 1 })
    takeWs(session, first)
    expect(conn.transport).toBe('websocket')
    expect(changes).toEqual([{ from: 'long-polling', to: 'websocket' }])

    await conn.send(Buffer.from([7, 7]))
    const second = await ws.nextJson()
    expect(second.seq).toBe(4)
    expect(decodeItem(second.m[0])).toEqual(Buffer.from([7, 7]))

    // Up: a packet frame; the server acknowledges it.
    ws.send({ seq: 2, m: ['up2', { b: 'AA==' }], ack: 4 })
    expect(await ws.nextJson()).toEqual({ ack: 3 })
    expect(s.received.get(conn.id)).toEqual(['before', 'up2', Buffer.from([0])])
    // A repeat is acknowledged again, not applied twice; ping is answered with pong.
    ws.send({ seq: 2, m: ['up2', { b: 'AA==' }, 'ping'], ack: 4 })
    const pong = await ws.nextJson()
    expect(pong).toEqual({ seq: 5, m: ['pong'], ack: 4 })
    expect(s.received.get(conn.id)).toHaveLength(3)
    ws.close()
  })

  it('an unknown or expired session: accepted, then closed with 4410', async () => {
    const s = await llServer()
    const ws = new RawWs(`${s.wsBase}?transport=websocket&sid=zz.AAAAAAAAAAAAAAAAAAAAAA&c=1&ack=0`)
    expect(await ws.closed).toEqual({ code: 4410, reason: 'session gone' })
  })

  it('a newer poll replaces the WebSocket carrier (4001); an upgrade with a stale c is closed 4409, the session stays', async () => {
    const s = await llServer({ hold: 300 }, false)
    const session = await RawSession.open(s.base, 'long-polling')
    const ws = new RawWs(session.joinUrl({ c: 2 }))
    await ws.nextJson()
    ws.send({ upgrade: 1, ack: 0 })
    await until(() => s.conns[0].transport === 'websocket', 3000, 'upgrade')
    const poll = session.poll({ c: 3 })
    expect(await ws.closed).toEqual({ code: 4001, reason: 'replaced' })
    expect((await poll).status).toBe(200)
    expect(s.conns[0].transport).toBe('long-polling')

    const late = new RawWs(session.joinUrl({ c: 2 }))
    await late.nextJson()
    late.send({ upgrade: 1, ack: 0 })
    expect((await late.closed).code).toBe(4409)
    await s.conns[0].send('still here')
    session.c = 3
    await session.pollUntil(1)
    expect(session.received).toEqual(['still here'])
  })

  it('a frame that breaks the protocol drops the WebSocket (1002), never the session', async () => {
    const s = await llServer({ hold: 300 }, false)
    const session = await RawSession.open(s.base)
    for (const bad of ['not json', '{"seq":5,"m":["gap"]}', '{"ack":99}', '{"m":["no seq"]}']) {
      const ws = new RawWs(session.joinUrl({ c: 2 }))
      await ws.nextJson()
      ws.send(bad)
      expect((await ws.closed).code).toBe(1002)
    }
    expect((await session.post(['fine'])).body).toEqual({ ack: 1 })
    expect(s.received.get(s.conns[0].id)).toEqual(['fine'])
  })

  it('none lost, none doubled: 3000 messages sent while the client moves from long-polling to a WebSocket', async () => {
    const s = await llServer({ hold: 2000 }, false)
    const session = await RawSession.open(s.base, 'long-polling')
    const conn = s.conns[0]
    const total = 3000
    let sending = true
    const producer = (async () => {
      for (let i = 1; i <= total; i++) {
        await conn.send(`n${i}`)
        if (i % 50 === 0) await sleep(1)
      }
      sending = false
    })()

    // A few polls first, then the join.
    for (let i = 0; i < 3; i++) await session.poll()
    const ws = new RawWs(session.joinUrl({ c: 2 }))
    await ws.nextJson()
    // One more poll races the upgrade (make-before-break): its answer and the WebSocket overlap.
    const racing = session.poll({ c: 1 })
    ws.send({ upgrade: 1, ack: session.ack })
    await racing

    const deadline = Date.now() + 20_000
    while (session.received.length < total) {
      if (Date.now() > deadline) throw new Error(`only ${session.received.length} of ${total}`)
      const packet = await ws.nextJson(5000)
      takeWs(session, packet)
      if (packet.m) ws.send({ ack: session.ack })
    }
    await producer
    expect(sending).toBe(false)
    expect(session.received).toEqual(Array.from({ length: total }, (_, i) => `n${i + 1}`))
    expect(conn.transport).toBe('websocket')
    ws.close()
  })
})
