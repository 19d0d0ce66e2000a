/**
 * Server-Sent Events on a real backend, read by a small `node:http` client written here (it parses frames the way
 * the HTML standard says, nothing more): the ride events stream (replay after `Last-Event-ID`, live events, resume
 * after a dropped connection and after a restart, the end after `maxStreamMs`, refusals, stream limits) and the
 * assistant's token stream. First, `server/longlink/sse.ts` on a bare Node server: frames, headers, backpressure,
 * the client going away, and a log read while it grows. Every wait is bounded.
 */
import http from 'node:http'
import net from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { RideSummary } from '../../server/api-contract'
import { rideSummaryText, summaryTokens, tokenize } from '../../server/assistant'
import { DEFAULT_LIMITS } from '../../server/config'
import { formatEvent, openEventStream, streamEventLog, type EventLogEntry, type EventStream } from '../../server/longlink/sse'
import type { RideEventRecord } from '../../server/store/types'
import { createTokenService } from '../../server/tokens'
import { startPostgres, type PostgresServer } from '../support/postgres'
import { sleep, until, within } from '../support/wait'
import { allLogLines, api, login, testBackend, type JsonBody, type TestBackend } from './helpers'

// ---------------------------------------------------------------------------------------------------------------
// A minimal SSE client

interface Frame {
  event: string
  /** The `id:` of this frame, when it had one. */
  id?: string
  data: string
}

interface SseClient {
  status: number
  headers: http.IncomingHttpHeaders
  frames: Frame[]
  comments: string[]
  retry: number | undefined
  /** The last id seen, as a browser's EventSource keeps it. */
  lastEventId: string | undefined
  /** The raw body so far. */
  text: string
  /** Resolves when the response ends ('end') or the connection drops before its end ('aborted'). */
  ended: Promise<'end' | 'aborted'>
  readonly isEnded: boolean
  json(): JsonBody
  /** Waits (at most `ms`) until `count` frames have arrived; returns them. */
  waitFor(count: number, ms?: number): Promise<Frame[]>
  /** Drops the connection. */
  close(): void
}

const clients = new Set<SseClient>()

interface SseRequest {
  method?: 'GET' | 'POST'
  token?: string
  lastEventId?: string | number
  headers?: Record<string, string>
  body?: unknown
}

/** Opens `path` and resolves once the response headers are in (within 5 s). */
function sse(port: number, path: string, opts: SseRequest = {}): Promise<SseClient> {
  const body = opts.body === undefined ? undefined : JSON.stringify(opts.body)
  const headers: Record<string, string> = {
    accept: 'text/event-stream',
    ...(opts.token && { authorization: `Bearer ${opts.token}` }),
    ...(opts.lastEventId !== undefined && { 'last-event-id': String(opts.lastEventId) }),
    ...(body !== undefined && { 'content-type': 'application/json' }),
    ...opts.headers,
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      req.destroy()
      reject(new Error(`${path}: no response headers within 5 s`))
    }, 5000)
    const req = http.request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers, agent: false }, (res) => {
      clearTimeout(timer)
      res.setEncoding('utf8')
      let buffer = ''
      let event = ''
      let id: string | undefined
      let data: string[] = []
      let isEnded = false
      const client: SseClient = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        frames: [],
        comments: [],
        retry: undefined,
        lastEventId: undefined,
        text: '',
        ended: new Promise((r) =>
          res.on('close', () => {
            isEnded = true
            clients.delete(client)
            r(res.complete ? 'end' : 'aborted')
          }),
        ),
        get isEnded() {
          return isEnded
        },
        json: () => JSON.parse(client.text) as JsonBody,
        async waitFor(count, ms = 5000) {
          await until(() => client.frames.length >= count, ms, `${count} frames on ${path} (got ${client.frames.length})`)
          return client.frames.slice(0, count)
        },
        close: () => req.destroy(),
      }
      const line = (l: string): void => {
        if (l === '') {
          if (data.length) client.frames.push({ event: event || 'message', ...(id !== undefined && { id }), data: data.join('\n') })
          event = ''
          id = undefined
          data = []
          return
        }
        if (l.startsWith(':')) return void client.comments.push(l.slice(1).replace(/^ /, ''))
        const colon = l.indexOf(':')
        const field = colon < 0 ? l : l.slice(0, colon)
        const value = colon < 0 ? '' : l.slice(colon + 1).replace(/^ /, '')
        if (field === 'data') data.push(value)
        else if (field === 'event') event = value
        else if (field === 'id' && !value.includes('\0')) id = client.lastEventId = value
        else if (field === 'retry' && /^\d+$/.test(value)) client.retry = Number(value)
      }
      res.on('data', (chunk: string) => {
        client.text += chunk
        buffer += chunk
        let nl: number
        while ((nl = buffer.indexOf('\n')) >= 0) {
          line(buffer.slice(0, nl).replace(/\r$/, ''))
          buffer = buffer.slice(nl + 1)
        }
      })
      res.on('error', () => {})
      clients.add(client)
      resolve(client)
    })
    req.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    req.end(body)
  })
}

/** A raw connection to `port` on loopback, destroyed after each test. */
const sockets = new Set<net.Socket>()
function netConnect(port: number): net.Socket {
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => {})
  sockets.add(socket)
  return socket
}

/** A stored event as the stream must send it. */
const frameOf = (e: RideEventRecord): Frame => ({ event: e.type, id: String(e.id), data: JSON.stringify(e.data) })

// ---------------------------------------------------------------------------------------------------------------
// server/longlink/sse.ts on a bare Node server

describe('openEventStream', () => {
  const servers = new Set<http.Server>()
  afterAll(async () => {
    for (const s of servers) {
      s.closeAllConnections()
      await new Promise((r) => s.close(r))
    }
  })

  /** A bare server whose every request is handed to `handler`; resolves with its port. */
  async function bare(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<number> {
    const server = http.createServer(handler)
    servers.add(server)
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    return (server.address() as net.AddressInfo).port
  }

  it('formats frames: one data line per line (CRLF, CR, LF), and refuses CR, LF or NUL in event and id', () => {
    expect(formatEvent({ data: 'plain' })).toBe('data: plain\n\n')
    expect(formatEvent({ event: 'e', id: 7, data: 'a\r\nb\rc\n\nd' })).toBe('event: e\nid: 7\ndata: a\ndata: b\ndata: c\ndata: \ndata: d\n\n')
    expect(formatEvent({ data: '' })).toBe('data: \n\n')
    for (const bad of ['a\nb', 'a\rb', 'a\0b']) {
      expect(() => formatEvent({ event: bad, data: 'x' })).toThrow(TypeError)
      expect(() => formatEvent({ id: bad, data: 'x' })).toThrow(TypeError)
    }
    expect(() => formatEvent({ data: 42 as unknown as string })).toThrow(TypeError)
  })

  it('sends headers at once, retry, events and heartbeats; reads Last-Event-ID from the header or ?lastEventId=', async () => {
    let seen: string | undefined
    const port = await bare((req, res) => {
      const stream = openEventStream(req, res, { retryMs: 1500, heartbeatMs: 50, headers: { 'x-extra': 'yes' } })
      seen = stream.lastEventId
      if (req.url?.startsWith('/send')) stream.send({ event: 'greeting', id: 'a-1', data: '第一行\n second line ' })
    })
    const idle = await sse(port, '/idle', { lastEventId: 'from-header' })
    expect(idle.status).toBe(200)
    expect(idle.headers).toMatchObject({
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
      'x-extra': 'yes',
    })
    expect(seen).toBe('from-header')
    await until(() => idle.comments.filter((c) => c === 'hb').length >= 2, 2000, 'two heartbeats')
    expect(idle.retry).toBe(1500)

    const sent = await sse(port, '/send?lastEventId=from-query')
    expect(seen).toBe('from-query')
    expect(await sent.waitFor(1)).toEqual([{ event: 'greeting', id: 'a-1', data: '第一行\n second line ' }])
    await sse(port, '/send?lastEventId=from-query', { lastEventId: 'header-wins' })
    expect(seen).toBe('header-wins')
  })

  it('send() says false when the socket is congested, drained() resolves once the client reads, close() ends the response', async () => {
    let stream: EventStream | undefined
    const port = await bare((req, res) => void (stream = openEventStream(req, res, { heartbeatMs: 0 })))
    const chunk = 'x'.repeat(64 * 1024)
    // A raw socket that reads nothing until told to: the kernel's buffers fill, then Node's.
    const socket = netConnect(port)
    socket.pause()
    socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
    await until(() => stream, 2000, 'the stream')
    // A false from send() within one tick may only mean the socket is corked until the next one: congested is when
    // drained() then stays pending.
    let congested = false
    for (let sends = 0; !congested; sends++) {
      if (sends > 4000) throw new Error('never congested')
      if (stream!.send({ data: chunk })) continue
      congested = !(await Promise.race([stream!.drained().then(() => true), sleep(100).then(() => false)]))
    }
    let drained = false
    const waiting = stream!.drained().then(() => (drained = true))
    await sleep(50)
    expect(drained).toBe(false)
    let received = ''
    socket.setEncoding('latin1')
    socket.on('data', (c: string) => (received += c))
    socket.resume()
    await within(waiting, 5000, 'drain')
    expect(stream!.send({ data: 'last' })).toBe(true)
    stream!.close()
    // Chunked framing: the last event's chunk, then the zero-length chunk that ends the response.
    await until(() => received.endsWith('data: last\n\n\r\n0\r\n\r\n'), 5000, 'every byte and the end of the response')
    expect(stream!.isClosed).toBe(true)
    expect(stream!.send({ data: 'after close' })).toBe(false)
    socket.destroy()
  })

  it('closed and onClose fire when the client goes away', async () => {
    let stream: EventStream | undefined
    const port = await bare((req, res) => void (stream = openEventStream(req, res, { heartbeatMs: 20 })))
    const c = await sse(port, '/')
    await until(() => stream, 2000, 'the stream')
    let heard = 0
    stream!.onClose(() => heard++)
    c.close()
    await within(stream!.closed, 5000, 'closed')
    expect(heard).toBe(1)
    expect(stream!.isClosed).toBe(true)
    stream!.onClose(() => heard++)
    expect(heard).toBe(2)
  })

  it('streamEventLog: entries added while a read is under way are sent after it, in order, none twice', async () => {
    const log: EventLogEntry[] = []
    const wakers = new Set<() => void>()
    const append = (n: number): void => {
      for (let i = 0; i < n; i++) log.push({ id: log.length + 1, event: 'n', data: String(log.length + 1) })
      for (const w of wakers) w()
    }
    append(5)
    let reads = 0
    const port = await bare((req, res) => {
      const stream = openEventStream(req, res, { heartbeatMs: 0 })
      void streamEventLog(
        stream,
        {
          async read(after, limit) {
            const page = log.filter((e) => e.id > after).slice(0, limit)
            // Entries arrive while each of the first reads is on its way back.
            if (++reads <= 3) append(4)
            await sleep(5)
            return page
          },
          watch(wake) {
            wakers.add(wake)
            return () => wakers.delete(wake)
          },
        },
        { afterId: 2, batchSize: 3 },
      ).finally(() => stream.close())
    })
    const c = await sse(port, '/')
    await c.waitFor(15)
    append(2)
    const frames = await c.waitFor(17)
    expect(frames.map((f) => Number(f.id))).toEqual(Array.from({ length: 17 }, (_, i) => i + 3))
    expect(frames.every((f) => f.data === f.id)).toBe(true)
    c.close()
    await until(() => wakers.size === 0, 2000, 'the watch stopped')
  })
})

// ---------------------------------------------------------------------------------------------------------------
// The backend's endpoints

/** Env of the test backends: frequent heartbeats, a fast assistant. */
const ENV = { SSE_HEARTBEAT_MS: '200', ASSISTANT_TOKEN_MS: '2' }
let b: TestBackend
const tokensSeen = new Set<string>()

async function riderToken(backend: TestBackend, rider: string): Promise<string> {
  const token = await login(backend.url, rider)
  tokensSeen.add(token)
  return token
}

/** Waits until `rider`'s hold on `bike` is riding (the simulated lock opens after `unlockDelayMs`). */
async function untilRiding(backend: TestBackend, token: string, bike: string): Promise<void> {
  const deadline = Date.now() + 5000
  for (;;) {
    const r = await api(backend.url, 'GET', '/api/rides/active', { token })
    if (r.body.rides?.some((h: JsonBody) => h.bike === bike && h.status === 'riding')) return
    if (Date.now() > deadline) throw new Error(`${bike} not riding within 5 s`)
    await sleep(10)
  }
}

/** A whole ride: reserve, unlock, riding, lock; returns the lock's answer. */
async function ride(backend: TestBackend, token: string, bike: string): Promise<RideSummary> {
  expect((await api(backend.url, 'POST', `/api/bikes/${bike}/reserve`, { token })).status).toBe(200)
  expect((await api(backend.url, 'POST', `/api/bikes/${bike}/unlock`, { token })).status).toBe(202)
  await untilRiding(backend, token, bike)
  const lock = await api<RideSummary>(backend.url, 'POST', `/api/bikes/${bike}/lock`, { token })
  expect(lock.status).toBe(200)
  return lock.body
}

beforeAll(async () => {
  b = await testBackend({}, ENV)
})
afterEach(() => {
  for (const c of clients) c.close()
  for (const s of sockets) s.destroy()
  sockets.clear()
})
afterAll(async () => {
  await b?.close()
})

describe('GET /api/rides/events', () => {
  it('replays the events after Last-Event-ID, then sends live ones during reserve, unlock and lock, none missed or repeated', async () => {
    const rider = 'sse_live'
    const token = await riderToken(b, rider)
    await ride(b, token, 'sl1')
    const history = await b.store.rideEventsAfter(rider, 0, 100)
    expect(history.map((e) => e.type)).toEqual(['reserved', 'unlocking', 'riding', 'locked'])

    const c = await sse(b.port, '/api/rides/events', { token, lastEventId: history[1].id })
    expect(await c.waitFor(2)).toEqual(history.slice(2).map(frameOf))

    expect((await api(b.url, 'POST', '/api/bikes/sl2/reserve', { token })).status).toBe(200)
    expect((await c.waitFor(3))[2]).toMatchObject({ event: 'reserved', data: expect.stringContaining('"bike":"sl2"') })
    expect((await api(b.url, 'POST', '/api/bikes/sl2/unlock', { token })).status).toBe(202)
    expect((await c.waitFor(5)).slice(3).map((f) => f.event)).toEqual(['unlocking', 'riding'])
    const lock = await api<RideSummary>(b.url, 'POST', '/api/bikes/sl2/lock', { token })
    const frames = await c.waitFor(6)
    expect(JSON.parse(frames[5].data)).toEqual(lock.body)
    expect(lock.body.fare).toBeGreaterThan(0)

    await sleep(100)
    expect(c.frames).toEqual((await b.store.rideEventsAfter(rider, history[1].id, 100)).map(frameOf))
    const ids = c.frames.map((f) => Number(f.id))
    expect(ids).toEqual([...ids].sort((x, y) => x - y))
    expect(JSON.parse(c.frames[3].data)).toEqual({ bike: 'sl2', rider, status: 'unlocking' })
    expect(JSON.parse(c.frames[4].data)).toEqual({ bike: 'sl2', rider, time: lock.body.startedAt })
    expect(c.isEnded).toBe(false)
  })

  it('without Last-Event-ID sends the whole history; events made while it catches up come after it, once each', async () => {
    const rider = 'sse_catchup'
    const token = await riderToken(b, rider)
    // A long history (several pages of the store's reads), written straight to the store.
    for (let i = 0; i < 250; i++) await b.store.appendRideEvent(rider, 'old', 'reserved', { bike: 'old', rider, status: 'reserved', expiresAt: i }, i)
    const [c] = await Promise.all([
      sse(b.port, '/api/rides/events', { token }),
      (async () => {
        await ride(b, token, 'sc1')
        expect((await api(b.url, 'POST', '/api/bikes/sc2/reserve', { token })).status).toBe(200)
      })(),
    ])
    await c.waitFor(255)
    await sleep(100)
    expect(c.frames).toEqual((await b.store.rideEventsAfter(rider, 0, 1000)).map(frameOf))
    expect(c.frames.slice(250).map((f) => f.event)).toEqual(['reserved', 'unlocking', 'riding', 'locked', 'reserved'])
  })

  it('resumes after a dropped connection with exactly the missed events (header, or ?lastEventId= with ?token=)', async () => {
    const rider = 'sse_resume'
    const token = await riderToken(b, rider)
    const first = await sse(b.port, '/api/rides/events', { token })
    expect((await api(b.url, 'POST', '/api/bikes/sr1/reserve', { token })).status).toBe(200)
    await first.waitFor(1)
    first.close()
    expect(await within(first.ended, 2000, 'the drop')).toBe('aborted')

    expect((await api(b.url, 'POST', '/api/bikes/sr1/unlock', { token })).status).toBe(202)
    await untilRiding(b, token, 'sr1')
    expect((await api(b.url, 'POST', '/api/bikes/sr1/lock', { token })).status).toBe(200)

    const missed = (await b.store.rideEventsAfter(rider, Number(first.lastEventId), 100)).map(frameOf)
    expect(missed.map((f) => f.event)).toEqual(['unlocking', 'riding', 'locked'])
    const again = await sse(b.port, '/api/rides/events', { token, lastEventId: first.lastEventId })
    expect(await again.waitFor(3)).toEqual(missed)

    // A client that can set no header at all.
    const query = await sse(b.port, `/api/rides/events?token=${encodeURIComponent(token)}&lastEventId=${first.lastEventId}`)
    expect(query.status).toBe(200)
    expect(await query.waitFor(3)).toEqual(missed)
    await sleep(100)
    expect(again.frames).toHaveLength(3)
    expect(query.frames).toHaveLength(3)
  })

  it('resumes across a backend restart: ids survive, nothing is lost or repeated', async () => {
    const first = await testBackend({}, ENV)
    let second: TestBackend | undefined
    try {
      const rider = 'sse_restart'
      const token = await riderToken(first, rider)
      const before = await ride(first, token, 'rs1')
      const c = await sse(first.port, '/api/rides/events', { token })
      await c.waitFor(4)
      expect((await api(first.url, 'POST', '/api/bikes/rs2/reserve', { token })).status).toBe(200)
      expect((await api(first.url, 'POST', '/api/bikes/rs2/unlock', { token })).status).toBe(202)
      await c.waitFor(7)
      // The assistant's first tokens about ride rs1, before the restart.
      const partial = await sse(first.port, '/api/assistant/summary', { method: 'POST', token, body: { bike: 'rs1' } })
      await partial.waitFor(8)
      partial.close()

      const { port } = first
      const { dataDir } = first.config
      await first.close()
      // Shutdown ends streams properly, and the client reconnects after its `retry:`.
      expect(await within(c.ended, 5000, 'the stream ends with the backend')).toBe('end')
      const seen = c.frames.slice()
      expect(seen.map((f) => f.event)).toEqual(['reserved', 'unlocking', 'riding', 'locked', 'reserved', 'unlocking', 'riding'])

      second = await testBackend({ port, dataDir }, ENV)
      expect(second.port).toBe(port)
      // While nobody listens, the ride ends and another bike is reserved; the client comes back with its last id.
      expect((await api(second.url, 'POST', '/api/bikes/rs2/lock', { token })).status).toBe(200)
      expect((await api(second.url, 'POST', '/api/bikes/rs3/reserve', { token })).status).toBe(200)
      const resumed = await sse(second.port, '/api/rides/events', { token, lastEventId: c.lastEventId })
      await resumed.waitFor(2)
      await sleep(100)
      expect(resumed.frames.map((f) => f.event)).toEqual(['locked', 'reserved'])
      expect(Number(resumed.frames[0].id)).toBeGreaterThan(Number(c.lastEventId))

      // From the start: exactly what the first stream saw, then what the resumed one saw.
      const all = await sse(second.port, '/api/rides/events', { token, lastEventId: 0 })
      await all.waitFor(9)
      await sleep(100)
      expect(all.frames).toEqual([...seen, ...resumed.frames])

      // The assistant goes on with the same text from the token after the last one received.
      const rest = await sse(second.port, '/api/assistant/summary', {
        method: 'POST',
        token,
        body: { bike: 'rs1' },
        lastEventId: partial.lastEventId,
      })
      await within(rest.ended, 5000, 'the summary')
      const tokens = [...partial.frames, ...rest.frames].filter((f) => f.event === 'token')
      expect(tokens.map((f) => Number(f.id))).toEqual(tokens.map((_, i) => i))
      expect(tokens.map((f) => f.data).join('')).toBe(rideSummaryText(before))
      expect(rest.frames.at(-1)).toEqual({ event: 'done', data: rideSummaryText(before) })
    } finally {
      await first.close()
      await second?.close()
    }
  })

  it('ends the stream after ?maxStreamMs= (at least 1 s), and refuses a malformed one or a bad Last-Event-ID', async () => {
    const token = await riderToken(b, 'sse_max')
    for (const asked of ['1000', '1']) {
      const started = Date.now()
      const c = await sse(b.port, `/api/rides/events?maxStreamMs=${asked}`, { token })
      expect(await within(c.ended, 3000, `the end of a ${asked} ms stream`)).toBe('end')
      expect(Date.now() - started).toBeGreaterThanOrEqual(900)
    }
    for (const [query, lastEventId] of [
      ['?maxStreamMs=soon', undefined],
      ['?maxStreamMs=-5', undefined],
      ['', 'abc'],
      ['', '-1'],
      ['?lastEventId=1.5', undefined],
    ] as const) {
      const r = await sse(b.port, `/api/rides/events${query}`, { token, lastEventId })
      await within(r.ended, 2000, 'the answer')
      expect(r.status).toBe(400)
      expect(r.json().error).toMatchObject({ code: 'BAD_INPUT' })
    }
  })

  it('a stream outlives the HTTP request timeout (which bounds receiving requests only)', async () => {
    const short = await testBackend({ limits: { ...DEFAULT_LIMITS, httpHeadersTimeoutMs: 300, httpRequestTimeoutMs: 300 } }, ENV)
    try {
      const token = await riderToken(short, 'sse_timeout')
      const c = await sse(short.port, '/api/rides/events?maxStreamMs=1500', { token })
      await sleep(1000)
      expect(c.isEnded).toBe(false)
      expect((await api(short.url, 'POST', '/api/bikes/st1/reserve', { token })).status).toBe(200)
      expect((await c.waitFor(1))[0].event).toBe('reserved')
      expect(await within(c.ended, 3000, 'the end')).toBe('end')
    } finally {
      await short.close()
    }
  })

  it('refuses a missing or bad token with a JSON 401, not a stream', async () => {
    const other = createTokenService('another-secret').issue('sse_401', 60_000).token
    for (const [path, token, reason] of [
      ['/api/rides/events', undefined, 'missing'],
      ['/api/rides/events', other, 'bad-signature'],
      ['/api/rides/events?token=not-a-token', undefined, 'malformed'],
    ] as const) {
      const r = await sse(b.port, path, { token })
      await within(r.ended, 2000, 'the answer')
      expect(r.status).toBe(401)
      expect(r.headers['content-type']).toBe('application/json; charset=utf-8')
      expect(r.json().error).toMatchObject({ code: 'UNAUTHORIZED', reason })
    }
  })

  it('keeps at most 3 streams per rider (a new one closes the oldest); other riders are not affected', async () => {
    const rider = 'sse_limit'
    const token = await riderToken(b, rider)
    const otherToken = await riderToken(b, 'sse_limit_other')
    const other = await sse(b.port, '/api/rides/events', { token: otherToken })
    const streams: SseClient[] = []
    for (let i = 0; i < 3; i++) streams.push(await sse(b.port, '/api/rides/events', { token }))
    await sleep(100)
    expect(streams.some((s) => s.isEnded)).toBe(false)
    streams.push(await sse(b.port, '/api/rides/events', { token }))
    expect(await within(streams[0].ended, 2000, 'the oldest closed')).toBe('end')
    streams.push(await sse(b.port, '/api/rides/events', { token }))
    expect(await within(streams[1].ended, 2000, 'the next oldest closed')).toBe('end')
    expect((await api(b.url, 'POST', '/api/bikes/lim1/reserve', { token })).status).toBe(200)
    for (const s of streams.slice(2)) expect((await s.waitFor(1))[0].event).toBe('reserved')
    expect(streams.slice(2).some((s) => s.isEnded)).toBe(false)
    expect(other.isEnded).toBe(false)
    expect(other.frames).toEqual([])
  })

  it('refuses a stream beyond the per-address limit with a JSON 429, and takes one again once a stream closes', async () => {
    const limited = await testBackend({}, { ...ENV, SSE_STREAMS_PER_ADDRESS: '2' })
    try {
      const [t1, t2] = [await riderToken(limited, 'sse_addr1'), await riderToken(limited, 'sse_addr2')]
      await ride(limited, t1, 'ad1')
      const s1 = await sse(limited.port, '/api/rides/events', { token: t1 })
      await sse(limited.port, '/api/rides/events', { token: t2 })
      const refused = await sse(limited.port, '/api/rides/events', { token: t1 })
      await within(refused.ended, 2000, 'the refusal')
      expect(refused.status).toBe(429)
      expect(refused.json().error).toMatchObject({ code: 'RATE_LIMITED' })
      const summary = await sse(limited.port, '/api/assistant/summary', { method: 'POST', token: t1 })
      expect(summary.status).toBe(429)
      s1.close()
      const deadline = Date.now() + 3000
      let again: SseClient
      while ((again = await sse(limited.port, '/api/rides/events', { token: t1 })).status !== 200) {
        if (Date.now() > deadline) throw new Error('no stream accepted after one closed')
        await sleep(20)
      }
      expect(again.headers['content-type']).toBe('text/event-stream; charset=utf-8')
    } finally {
      await limited.close()
    }
  })

  it('answers text/event-stream, no-cache, never compressed, with retry and heartbeats', async () => {
    const token = await riderToken(b, 'sse_headers')
    const c = await sse(b.port, '/api/rides/events', { token, headers: { 'accept-encoding': 'gzip, deflate, br' } })
    expect(c.status).toBe(200)
    expect(c.headers['content-type']).toBe('text/event-stream; charset=utf-8')
    expect(c.headers['cache-control']).toBe('no-cache, no-transform')
    expect(c.headers['x-accel-buffering']).toBe('no')
    expect(c.headers['content-encoding']).toBeUndefined()
    expect(c.headers['content-length']).toBeUndefined()
    await until(() => c.comments.includes('hb'), 2000, 'a heartbeat')
    expect(c.retry).toBe(2000)
    expect(c.text.startsWith('retry: 2000\n')).toBe(true)
  })
})

describe('POST /api/assistant/summary', () => {
  let token: string
  let summary: RideSummary

  beforeAll(async () => {
    token = await riderToken(b, 'sse_asst')
    await ride(b, token, 'as0')
    summary = await ride(b, token, 'as1')
  })

  it('streams the latest ride’s summary token by token, ids 0, 1, 2…, then done with the whole text', async () => {
    const c = await sse(b.port, '/api/assistant/summary', { method: 'POST', token, headers: { 'accept-encoding': 'gzip' } })
    expect(c.status).toBe(200)
    expect(c.headers['content-type']).toBe('text/event-stream; charset=utf-8')
    expect(c.headers['cache-control']).toBe('no-cache, no-transform')
    expect(c.headers['content-encoding']).toBeUndefined()
    expect(await within(c.ended, 5000, 'the summary')).toBe('end')
    const text = rideSummaryText(summary)
    const tokens = c.frames.filter((f) => f.event === 'token')
    expect(tokens.length).toBeGreaterThan(20)
    expect(tokens.map((f) => f.id)).toEqual(tokens.map((_, i) => String(i)))
    expect(tokens.map((f) => f.data)).toEqual(summaryTokens(summary))
    expect(c.frames.at(-1)).toEqual({ event: 'done', data: text })
    expect(c.frames).toHaveLength(tokens.length + 1)

    // Chinese, then English; the bike, the duration and the fare.
    const [zh, en] = text.split('\n')
    expect(zh).toMatch(/[\u4e00-\u9fff]/)
    expect(zh).toContain(`单车 as1`)
    expect(zh).toContain(`${summary.fare.toFixed(2)} 元`)
    expect(en).toMatch(/^You rode bike as1 on \d{4}-\d{2}-\d{2} at \d{2}:\d{2} \(Beijing time\) for \d+ s\. The fare is \d+\.\d{2} yuan\./)
  })

  it('resumes from Last-Event-ID k with exactly tokens k+1…, then done; names a bike with {bike}', async () => {
    const tokens = summaryTokens(summary)
    for (const k of [0, 5, tokens.length - 2, tokens.length - 1, tokens.length + 10]) {
      const c = await sse(b.port, '/api/assistant/summary', { method: 'POST', token, lastEventId: k })
      await within(c.ended, 5000, `the summary after ${k}`)
      const rest = tokens.slice(k + 1).map((data, i) => ({ event: 'token', id: String(k + 1 + i), data }))
      expect(c.frames).toEqual([...rest, { event: 'done', data: tokens.join('') }])
    }
    const query = await sse(b.port, '/api/assistant/summary?lastEventId=3', { method: 'POST', token })
    await within(query.ended, 5000, 'the summary')
    expect(query.frames[0]).toEqual({ event: 'token', id: '4', data: tokens[4] })

    const older = await sse(b.port, '/api/assistant/summary', { method: 'POST', token, body: { bike: 'as0' } })
    await within(older.ended, 5000, 'the summary of as0')
    expect(older.frames.at(-1)?.data).toContain('You rode bike as0 ')
  })

  it('404 RIDE_NOT_FOUND without a finished ride (or none on that bike), 400 for a bad bike or Last-Event-ID, 401 without a token', async () => {
    const fresh = await riderToken(b, 'sse_no_ride')
    expect((await api(b.url, 'POST', '/api/bikes/nr1/reserve', { token: fresh })).status).toBe(200)
    for (const [who, body, status, code] of [
      [fresh, undefined, 404, 'RIDE_NOT_FOUND'],
      [token, { bike: 'never-ridden' }, 404, 'RIDE_NOT_FOUND'],
      [token, { bike: 'no spaces!' }, 400, 'BAD_INPUT'],
      [token, { bike: 42 }, 400, 'BAD_INPUT'],
      [undefined, undefined, 401, 'UNAUTHORIZED'],
    ] as const) {
      const r = await sse(b.port, '/api/assistant/summary', { method: 'POST', token: who, body })
      await within(r.ended, 2000, 'the answer')
      expect(r.status).toBe(status)
      expect(r.headers['content-type']).toBe('application/json; charset=utf-8')
      expect(r.json().error).toMatchObject({ code })
    }
    const bad = await sse(b.port, '/api/assistant/summary', { method: 'POST', token, lastEventId: 'x' })
    await within(bad.ended, 2000, 'the answer')
    expect(bad.status).toBe(400)
    // No token from the query here: a POST can always carry its header.
    const query = await sse(b.port, `/api/assistant/summary?token=${encodeURIComponent(token)}`, { method: 'POST' })
    expect(query.status).toBe(401)
  })

  it('the text is a pure function of the ride, and its tokens give it back exactly', () => {
    const ride: RideSummary = { bike: 'b7', rider: 'r', startedAt: Date.UTC(2024, 4, 1, 8, 30), endedAt: 0, durationMs: 3_725_400, fare: 31 }
    expect(rideSummaryText(ride)).toBe(
      '您于 2024-05-01 16:30（北京时间）骑行了单车 b7，用时 1 小时 2 分 5 秒，车费 31.00 元。祝您一路顺风！\n' +
        'You rode bike b7 on 2024-05-01 at 16:30 (Beijing time) for 1 h 2 min 5 s. The fare is 31.00 yuan. Have a good day!',
    )
    expect(rideSummaryText({ ...ride })).toBe(rideSummaryText(ride))
    const tokens = summaryTokens(ride)
    expect(tokens.join('')).toBe(rideSummaryText(ride))
    expect(tokens.slice(0, 3)).toEqual(['您', '于', ' '])
    expect(tokens).toContain('\n')
    expect(tokens).toContain('You ')
    expect(tokenize('')).toEqual([])
  })
})

describe('on PostgreSQL', () => {
  let pg: PostgresServer | undefined
  beforeAll(async () => {
    pg = await startPostgres('longlink_sse')
  }, 60_000)
  afterAll(async () => {
    await pg?.stop()
  })

  it('two backends on one database: a stream on one hears the events made on the other, in order, each once', async () => {
    const a = await testBackend({ databaseUrl: pg!.url }, { ...ENV, SSE_POLL_MS: '200' })
    const other = await testBackend({ databaseUrl: pg!.url, tokenSecret: a.config.tokenSecret }, ENV)
    try {
      const rider = 'sse_pg'
      const token = await riderToken(a, rider)
      const c = await sse(a.port, '/api/rides/events', { token })
      expect((await api(a.url, 'POST', '/api/bikes/pg1/reserve', { token })).status).toBe(200)
      expect((await c.waitFor(1))[0].event).toBe('reserved')
      // The rest happens on the other backend: this one learns of it from the database.
      expect((await api(other.url, 'POST', '/api/bikes/pg1/unlock', { token })).status).toBe(202)
      await untilRiding(other, token, 'pg1')
      const lock = await api<RideSummary>(other.url, 'POST', '/api/bikes/pg1/lock', { token })
      expect(lock.status).toBe(200)
      const frames = await c.waitFor(4)
      await sleep(300)
      expect(c.frames).toEqual((await a.store.rideEventsAfter(rider, 0, 100)).map(frameOf))
      expect(frames.map((f) => f.event)).toEqual(['reserved', 'unlocking', 'riding', 'locked'])
      expect(JSON.parse(frames[3].data)).toEqual(lock.body)

      const replay = await sse(other.port, '/api/rides/events', { token, lastEventId: frames[0].id })
      expect(await replay.waitFor(3)).toEqual(frames.slice(1))
      const summary = await sse(other.port, '/api/assistant/summary', { method: 'POST', token })
      await within(summary.ended, 5000, 'the summary')
      expect(summary.frames.at(-1)).toEqual({ event: 'done', data: rideSummaryText(lock.body) })
    } finally {
      await a.close()
      await other.close()
    }
  })
})

describe('logs', () => {
  it('never carry a token, also one sent as ?token=', () => {
    const all = allLogLines.flat().join('\n')
    expect(tokensSeen.size).toBeGreaterThan(5)
    for (const t of tokensSeen) expect(all).not.toContain(t)
    expect(b.log.entries().some((e) => e.event === 'http.access' && e.path === '/api/rides/events')).toBe(true)
  })
})
