/**
 * Proves the wx/uni request simulator behaves as documented, against a real HTTP server on 127.0.0.1: chunked
 * Server-Sent Events cut at random byte offsets, the 60 s cap, the 10-request limit, the background kill, abort,
 * plain JSON requests, the uni Promise flavour and request bodies.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  createChunkSplitter,
  createRequestSimulator,
  REQUEST_ERR_MSG,
  SimRequestTask,
  type CallbackResult,
  type HeadersReceivedResult,
  type RequestOptions,
  type RequestParams,
  type RequestSimulator,
  type RequestSimulatorOptions,
  type RequestSuccessResult,
} from './request-sim'
import { sleep, until } from './wait'
import { within } from './wait'

/** Everything a test started, torn down in afterEach so no socket or timer outlives a test. */
const cleanups: Array<() => unknown> = []

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.()
  vi.restoreAllMocks()
})

// Server-Sent Events with multi-byte characters (2, 3 and 4 UTF-8 bytes) and both CRLF and LF line ends, written in
// several pieces: exactly what the simulator must cut up without losing or reordering a byte.
const SSE_EVENTS = [
  'retry: 1000\r\n\r\n',
  'id: 1\r\nevent: greeting\r\ndata: 你好，世界\r\n\r\n',
  'data: café ☕ 😀 naïve\r\ndata: second line\r\n\r\n',
  ': keep-alive comment\n\n',
  'id: 2\ndata: {"n":3,"text":"ありがとう 🎉"}\n\n',
]
const SSE_BODY = Buffer.from(SSE_EVENTS.join(''), 'utf8')

/** A longer body so every seed has many chances to cut inside a character or a CRLF. */
const LONG_SSE = Buffer.from(Array.from({ length: 12 }, (_, i) => `id: ${i}\r\ndata: 第${i}条消息 😀 é\r\n\r\n`).join(''), 'utf8')

const JSON_PAYLOAD = { ok: true, text: 'héllo 世界', list: [1, 2, 3] }

interface SeenRequest {
  method: string
  url: string
  headers: http.IncomingHttpHeaders
  body: Buffer
}

interface LoopServer {
  port: number
  url(path?: string): string
  /** Every request the server received, with its full body, in arrival order. */
  seen: SeenRequest[]
  /** Responses the client closed before the server ended them. */
  readonly clientClosed: number
  close(): Promise<void>
}

/** The routes every test shares. */
function route(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): void {
  const path = (req.url ?? '/').split('?')[0]
  switch (path) {
    case '/sse':
    case '/sse-long': {
      const pieces = path === '/sse' ? SSE_EVENTS.map((e) => Buffer.from(e, 'utf8')) : [LONG_SSE]
      res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache' })
      let i = 0
      const next = (): void => {
        if (res.destroyed) return
        if (i === pieces.length) return void res.end()
        res.write(pieces[i++])
        setTimeout(next, 5)
      }
      next()
      return
    }
    case '/forever': {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' })
      res.write(': open\n\n')
      const timer = setInterval(() => res.write('data: tick\n\n'), 20)
      res.on('close', () => clearInterval(timer))
      return
    }
    case '/json': {
      const bom = Buffer.from([0xef, 0xbb, 0xbf])
      res.writeHead(200, [
        ['Content-Type', 'application/json; charset=utf-8'],
        ['Set-Cookie', 'a=1; Path=/'],
        ['Set-Cookie', 'b=2; HttpOnly'],
        ['X-Trace-Id', 'abc'],
      ])
      res.end(Buffer.concat([bom, Buffer.from(JSON.stringify(JSON_PAYLOAD), 'utf8')]))
      return
    }
    case '/not-json':
      res.writeHead(200, { 'Content-Type': 'text/plain' })
      res.end('plain {text')
      return
    case '/missing':
      res.writeHead(404, { 'Content-Type': 'application/json' })
      res.end('{"error":"not found"}')
      return
    case '/echo':
      res.writeHead(200, { 'Content-Type': 'application/json' })
      res.end(JSON.stringify({ method: req.method, url: req.url, body: body.toString('utf8') }))
      return
    case '/redirect':
      res.writeHead(302, { Location: '/echo?from=redirect' })
      res.end()
      return
    case '/redirect-away':
      res.writeHead(302, { Location: 'http://example.com/' })
      res.end()
      return
    case '/cut':
      res.writeHead(200, { 'Content-Type': 'text/event-stream' })
      res.write('data: partial\n\n')
      setTimeout(() => req.socket.destroy(), 20)
      return
    default:
      res.writeHead(500)
      res.end('no route')
  }
}

async function startServer(): Promise<LoopServer> {
  const seen: SeenRequest[] = []
  let clientClosed = 0
  const srv = http.createServer((req, res) => {
    const parts: Buffer[] = []
    req.on('data', (b: Buffer) => parts.push(b))
    req.on('end', () => {
      const body = Buffer.concat(parts)
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body })
      res.on('close', () => {
        if (!res.writableFinished) clientClosed++
      })
      route(req, res, body)
    })
  })
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
  const port = (srv.address() as AddressInfo).port
  const server: LoopServer = {
    port,
    url: (path = '/') => `http://127.0.0.1:${port}${path}`,
    seen,
    get clientClosed() {
      return clientClosed
    },
    close: () =>
      new Promise<void>((resolve) => {
        srv.closeAllConnections()
        srv.close(() => resolve())
      }),
  }
  cleanups.push(() => server.close())
  return server
}

function simulator(opts?: RequestSimulatorOptions): RequestSimulator {
  const sim = createRequestSimulator(opts)
  cleanups.push(() => sim.close())
  return sim
}

interface Outcome {
  ok: boolean
  res: CallbackResult
}

/** One request with every callback and event recorded in order. */
interface Run {
  task: SimRequestTask
  log: string[]
  headers: HeadersReceivedResult[]
  chunks: ArrayBuffer[]
  /** Resolves with the outcome once `complete` ran (bounded by `ms`). */
  finished(ms?: number): Promise<Outcome>
}

function run(sim: RequestSimulator, options: RequestParams): Run {
  const log: string[] = []
  const headers: HeadersReceivedResult[] = []
  const chunks: ArrayBuffer[] = []
  let outcome: Outcome | undefined
  let resolveDone: (o: Outcome) => void = () => {}
  const done = new Promise<Outcome>((resolve) => (resolveDone = resolve))
  const task = sim.wx.request({
    ...options,
    success: (res) => {
      log.push('success')
      outcome = { ok: true, res }
    },
    fail: (res) => {
      log.push(`fail:${res.errMsg}`)
      outcome = { ok: false, res }
    },
    complete: () => {
      log.push('complete')
      resolveDone(outcome as Outcome)
    },
  })
  task.onHeadersReceived((res) => {
    log.push('headers')
    headers.push(res)
  })
  task.onChunkReceived((res) => {
    log.push('chunk')
    chunks.push(res.data)
  })
  return { task, log, headers, chunks, finished: (ms = 3000) => within(done, ms, `complete of ${options.url}`) }
}

function concat(chunks: ArrayBuffer[]): Buffer {
  return Buffer.concat(chunks.map((c) => Buffer.from(c)))
}

/** Absolute body offsets where one chunk ends and the next begins. */
function boundaries(chunks: ArrayBuffer[]): number[] {
  const out: number[] = []
  let offset = 0
  for (const c of chunks.slice(0, -1)) {
    offset += c.byteLength
    out.push(offset)
  }
  return out
}

const isContinuationByte = (b: number): boolean => (b & 0xc0) === 0x80

describe('request-sim: chunked responses (Server-Sent Events)', () => {
  it('delivers headers once, then chunks whose bytes concatenate to the body, then success with empty data', async () => {
    const s = await startServer()
    const sim = simulator()
    const r = run(sim, { url: s.url('/sse'), enableChunked: true, responseType: 'arraybuffer' })
    const { ok, res } = await r.finished()
    expect(ok).toBe(true)
    expect(r.log[0]).toBe('headers')
    expect(r.log.slice(-2)).toEqual(['success', 'complete'])
    expect(r.log.filter((e) => e === 'headers')).toHaveLength(1)
    expect(r.headers[0].statusCode).toBe(200)
    // The server's spelling survives: client code must look headers up case-insensitively.
    expect(r.headers[0].header['Content-Type']).toBe('text/event-stream; charset=utf-8')
    expect(r.headers[0].cookies).toEqual([])
    expect(concat(r.chunks).equals(SSE_BODY)).toBe(true)
    for (const chunk of r.chunks) {
      expect(chunk).toBeInstanceOf(ArrayBuffer)
      expect(Buffer.isBuffer(chunk)).toBe(false)
      expect(chunk.byteLength).toBeGreaterThan(0)
      expect(chunk.byteLength).toBeLessThanOrEqual(32)
    }
    const success = res as RequestSuccessResult
    expect(success.errMsg).toBe(REQUEST_ERR_MSG.ok)
    expect(success.statusCode).toBe(200)
    expect(success.data).toBeInstanceOf(ArrayBuffer)
    expect((success.data as ArrayBuffer).byteLength).toBe(0)
    expect(sim.active()).toBe(0)
  })

  it('gives success an empty string as data for a chunked text request', async () => {
    const s = await startServer()
    const r = run(simulator(), { url: s.url('/sse'), enableChunked: true })
    const { res } = await r.finished()
    expect((res as RequestSuccessResult).data).toBe('')
    expect(concat(r.chunks).equals(SSE_BODY)).toBe(true)
  })

  it('cuts at random byte offsets: inside multi-byte characters and between CR and LF, differently per seed', async () => {
    const s = await startServer()
    const seeds = Array.from({ length: 20 }, (_, i) => i + 1)
    const runs = seeds.map((seed) => run(simulator({ split: { mode: 'random', seed } }), { url: s.url('/sse-long'), enableChunked: true }))
    await Promise.all(runs.map((r) => r.finished()))
    const insideChar: number[] = []
    const insideCrlf: number[] = []
    const plans = new Set<string>()
    runs.forEach((r, i) => {
      expect(concat(r.chunks).equals(LONG_SSE)).toBe(true)
      const cuts = boundaries(r.chunks)
      plans.add(cuts.join(','))
      if (cuts.some((k) => isContinuationByte(LONG_SSE[k]))) insideChar.push(seeds[i])
      if (cuts.some((k) => LONG_SSE[k - 1] === 0x0d && LONG_SSE[k] === 0x0a)) insideCrlf.push(seeds[i])
    })
    // Deterministic per seed: arrival boundaries only ever add cuts to the planned ones.
    expect(insideChar.length).toBeGreaterThanOrEqual(seeds.length / 2)
    expect(insideCrlf.length).toBeGreaterThan(0)
    expect(plans.size).toBeGreaterThan(1)
  })

  it('can deliver byte by byte (fixed 1-byte chunks)', async () => {
    const s = await startServer()
    const r = run(simulator({ split: { mode: 'fixed', bytes: 1 } }), { url: s.url('/sse'), enableChunked: true })
    await r.finished()
    expect(r.chunks).toHaveLength(SSE_BODY.length)
    expect(r.chunks.every((c) => c.byteLength === 1)).toBe(true)
    expect(concat(r.chunks).equals(SSE_BODY)).toBe(true)
  })

  it('reports a stream the server cuts short as a fail, after the chunks that did arrive', async () => {
    const s = await startServer()
    const r = run(simulator({ split: { mode: 'none' } }), { url: s.url('/cut'), enableChunked: true })
    const { ok, res } = await r.finished()
    expect(ok).toBe(false)
    expect(res.errMsg).toBe(REQUEST_ERR_MSG.incompleteChunked)
    expect(concat(r.chunks).toString('utf8')).toBe('data: partial\n\n')
    expect(r.log.slice(-2)).toEqual([`fail:${REQUEST_ERR_MSG.incompleteChunked}`, 'complete'])
  })
})

describe('request-sim: createChunkSplitter', () => {
  const body = new Uint8Array(LONG_SSE)
  const arrivals = [body.subarray(0, 100), body.subarray(100, 101), body.subarray(101, 300), body.subarray(300)]
  const cutAll = (split: Parameters<typeof createChunkSplitter>[0], stream = 0): Uint8Array[] => {
    const cut = createChunkSplitter(split, stream)
    return arrivals.flatMap((a) => cut(a))
  }
  const sizes = (pieces: Uint8Array[]) => pieces.map((p) => p.byteLength)

  it('plans the same cuts for the same seed and stream, other cuts for another seed or stream', () => {
    const a = cutAll({ mode: 'random', seed: 7 })
    expect(sizes(cutAll({ mode: 'random', seed: 7 }))).toEqual(sizes(a))
    expect(sizes(cutAll({ mode: 'random', seed: 8 }))).not.toEqual(sizes(a))
    expect(sizes(cutAll({ mode: 'random', seed: 7 }, 1))).not.toEqual(sizes(a))
  })

  it('never returns an empty chunk, keeps every byte in order, ends a chunk at every arrival boundary', () => {
    for (const split of [{ mode: 'random', seed: 3, maxBytes: 5 }, { mode: 'fixed', bytes: 7 }, { mode: 'none' }] as const) {
      const pieces = cutAll(split)
      expect(pieces.every((p) => p.byteLength > 0)).toBe(true)
      expect(Buffer.concat(pieces).equals(LONG_SSE)).toBe(true)
      let offset = 0
      const ends = new Set(pieces.map((p) => (offset += p.byteLength)))
      for (const boundary of [100, 101, 300, body.byteLength]) expect(ends.has(boundary)).toBe(true)
      if (split.mode === 'random') expect(Math.max(...sizes(pieces))).toBeLessThanOrEqual(5)
      if (split.mode === 'fixed') expect(Math.max(...sizes(pieces))).toBeLessThanOrEqual(7)
      if (split.mode === 'none') expect(sizes(pieces)).toEqual(arrivals.map((a) => a.byteLength))
    }
  })
})

describe('request-sim: limits and lifecycle', () => {
  it('fails a never-ending stream at the cap with request:fail timeout, whatever timeout says, and no chunk follows', async () => {
    const s = await startServer()
    const sim = simulator({ capMs: 300 })
    const started = Date.now()
    const r = run(sim, { url: s.url('/forever'), enableChunked: true, timeout: 60_000 })
    const { ok, res } = await r.finished(3000)
    const elapsed = Date.now() - started
    expect(ok).toBe(false)
    expect(res).toEqual({ errMsg: REQUEST_ERR_MSG.timeout })
    expect(elapsed).toBeGreaterThanOrEqual(280)
    expect(elapsed).toBeLessThan(2000)
    expect(r.chunks.length).toBeGreaterThan(0)
    const chunksAtFail = r.chunks.length
    await sleep(150)
    expect(r.chunks.length).toBe(chunksAtFail)
    expect(r.log.slice(-2)).toEqual([`fail:${REQUEST_ERR_MSG.timeout}`, 'complete'])
    expect(sim.active()).toBe(0)
    await until(() => s.clientClosed === 1, 2000, 'the server to see the connection close')
  })

  it('applies a timeout below the cap', async () => {
    const s = await startServer()
    const started = Date.now()
    const r = run(simulator({ capMs: 5000 }), { url: s.url('/forever'), enableChunked: true, timeout: 150 })
    const { res } = await r.finished(3000)
    expect(res.errMsg).toBe(REQUEST_ERR_MSG.timeout)
    expect(Date.now() - started).toBeLessThan(2000)
  })

  it('fails an 11th concurrent request at once, without sending it; a freed slot is usable again', async () => {
    const s = await startServer()
    const sim = simulator()
    const streams = Array.from({ length: 10 }, () => run(sim, { url: s.url('/forever'), enableChunked: true }))
    await until(() => streams.every((r) => r.headers.length === 1), 3000, 'ten streams to start')
    expect(sim.active()).toBe(10)

    const eleventh = run(sim, { url: s.url('/echo') })
    expect(eleventh.log).toEqual([])
    const { ok, res } = await eleventh.finished()
    expect(ok).toBe(false)
    expect(res).toEqual({ errMsg: REQUEST_ERR_MSG.exceedMaxTaskCount })
    expect(eleventh.task.refusedBecause).toBe('limit')
    expect(eleventh.log).toEqual([`fail:${REQUEST_ERR_MSG.exceedMaxTaskCount}`, 'complete'])
    expect(s.seen).toHaveLength(10)

    streams[0].task.abort()
    await streams[0].finished()
    expect(sim.active()).toBe(9)
    const twelfth = run(sim, { url: s.url('/echo') })
    expect((await twelfth.finished()).ok).toBe(true)
    expect(s.seen).toHaveLength(11)
  })

  it("with overLimit 'queue', holds the extra request and sends it when a slot frees", async () => {
    const s = await startServer()
    const sim = simulator({ maxRequests: 2, overLimit: 'queue' })
    const streams = [0, 1].map(() => run(sim, { url: s.url('/forever'), enableChunked: true }))
    await until(() => streams.every((r) => r.headers.length === 1), 3000, 'two streams to start')
    const third = run(sim, { url: s.url('/echo') })
    await sleep(50)
    expect(third.task.state).toBe('queued')
    expect(sim.queued()).toBe(1)
    expect(s.seen).toHaveLength(2)
    streams[1].task.abort()
    const { ok } = await third.finished()
    expect(ok).toBe(true)
    expect(sim.queued()).toBe(0)
    expect(s.seen).toHaveLength(3)
  })

  it('fails requests still running backgroundKillMs after hide() with request:fail interrupted, refuses new ones until show()', async () => {
    const s = await startServer()
    const sim = simulator({ backgroundKillMs: 200 })
    const r = run(sim, { url: s.url('/forever'), enableChunked: true })
    await until(() => r.headers.length === 1, 2000, 'the stream to start')
    const hiddenAt = Date.now()
    sim.hide()
    expect(sim.hidden).toBe(true)
    const { ok, res } = await r.finished(3000)
    expect(ok).toBe(false)
    expect(res).toEqual({ errMsg: REQUEST_ERR_MSG.interrupted })
    expect(Date.now() - hiddenAt).toBeGreaterThanOrEqual(180)
    expect(sim.suspended).toBe(true)
    const chunksAtFail = r.chunks.length
    await sleep(80)
    expect(r.chunks.length).toBe(chunksAtFail)

    const refused = run(sim, { url: s.url('/echo') })
    expect((await refused.finished()).res.errMsg).toBe(REQUEST_ERR_MSG.suspended)
    expect(refused.task.refusedBecause).toBe('suspended')
    expect(s.seen).toHaveLength(1)

    sim.show()
    expect(sim.suspended).toBe(false)
    expect((await run(sim, { url: s.url('/echo') }).finished()).ok).toBe(true)
  })

  it('keeps requests alive when show() comes within the grace period, or with killOnHide off', async () => {
    const s = await startServer()
    const sim = simulator({ backgroundKillMs: 100 })
    const r = run(sim, { url: s.url('/forever'), enableChunked: true })
    sim.hide()
    await sleep(50)
    sim.show()
    await sleep(150)
    expect(r.task.state).toBe('active')

    const pinned = simulator({ killOnHide: false, backgroundKillMs: 50 })
    const p = run(pinned, { url: s.url('/forever'), enableChunked: true })
    pinned.hide()
    await sleep(150)
    expect(p.task.state).toBe('active')
    expect(pinned.suspended).toBe(false)
  })

  it('abort(): fail with request:fail abort, then no other callback; the server sees the connection close', async () => {
    const s = await startServer()
    const sim = simulator()
    const r = run(sim, { url: s.url('/forever'), enableChunked: true })
    await until(() => r.chunks.length >= 2, 2000, 'a few chunks')
    const logAtAbort = r.log.length
    r.task.abort()
    r.task.abort() // a second abort changes nothing
    const { ok, res } = await r.finished()
    expect(ok).toBe(false)
    expect(res).toEqual({ errMsg: REQUEST_ERR_MSG.abort })
    await sleep(100)
    expect(r.log.slice(logAtAbort)).toEqual([`fail:${REQUEST_ERR_MSG.abort}`, 'complete'])
    expect(r.task.state).toBe('done')
    expect(r.task.outcome).toBe(REQUEST_ERR_MSG.abort)
    expect(sim.active()).toBe(0)
    await until(() => s.clientClosed === 1, 2000, 'the server to see the connection close')
  })

  it('abort() from a chunk listener drops the chunks already received but not yet delivered', async () => {
    const s = await startServer()
    // Byte-by-byte: the ": open\n\n" line alone is 8 chunks queued in one go behind the first one.
    const r = run(simulator({ split: { mode: 'fixed', bytes: 1 } }), { url: s.url('/forever'), enableChunked: true })
    r.task.onChunkReceived(() => r.task.abort())
    const { res } = await r.finished()
    expect(res.errMsg).toBe(REQUEST_ERR_MSG.abort)
    await sleep(80)
    expect(r.chunks).toHaveLength(1)
    expect(r.log).toEqual(['headers', 'chunk', `fail:${REQUEST_ERR_MSG.abort}`, 'complete'])
  })

  it('abort() right after the call reports only the abort; abort() after success does nothing', async () => {
    const s = await startServer()
    const sim = simulator()
    const early = run(sim, { url: s.url('/sse'), enableChunked: true })
    early.task.abort()
    expect((await early.finished()).res.errMsg).toBe(REQUEST_ERR_MSG.abort)
    await sleep(50)
    expect(early.log).toEqual([`fail:${REQUEST_ERR_MSG.abort}`, 'complete'])

    const done = run(sim, { url: s.url('/echo') })
    await done.finished()
    done.task.abort()
    await sleep(50)
    expect(done.log).toEqual(['headers', 'success', 'complete'])
  })

  it('close() stops everything silently: no callback afterwards, sockets destroyed', async () => {
    const s = await startServer()
    const sim = createRequestSimulator()
    cleanups.push(() => sim.close())
    const r = run(sim, { url: s.url('/forever'), enableChunked: true })
    await until(() => r.chunks.length >= 1, 2000, 'a chunk')
    const logAtClose = r.log.length
    sim.close()
    await until(() => s.clientClosed === 1, 2000, 'the server to see the connection close')
    await sleep(80)
    expect(r.log.length).toBe(logAtClose)
  })
})

describe('request-sim: plain requests', () => {
  it('parses a JSON body on success (one BOM removed), with status, as-sent headers and cookies', async () => {
    const s = await startServer()
    const r = run(simulator(), { url: s.url('/json') })
    const { ok, res } = await r.finished()
    expect(ok).toBe(true)
    const success = res as RequestSuccessResult
    expect(success).toMatchObject({ errMsg: REQUEST_ERR_MSG.ok, statusCode: 200, data: JSON_PAYLOAD })
    expect(success.header['Content-Type']).toBe('application/json; charset=utf-8')
    expect(success.header['X-Trace-Id']).toBe('abc')
    expect(success.header['Set-Cookie']).toBe('a=1; Path=/,b=2; HttpOnly')
    expect(success.cookies).toEqual(['a=1; Path=/', 'b=2; HttpOnly'])
    expect(r.chunks).toHaveLength(0) // no enableChunked: the body only comes with success
    expect(r.log).toEqual(['headers', 'success', 'complete'])
  })

  it('leaves text alone for another dataType or unparsable JSON, gives raw bytes for arraybuffer, lower-cases on request', async () => {
    const s = await startServer()
    const sim = simulator({ headerCase: 'lower' })
    const text = (await run(sim, { url: s.url('/json'), dataType: 'text' }).finished()).res as RequestSuccessResult
    expect(text.data).toBe(JSON.stringify(JSON_PAYLOAD))
    expect(text.header['content-type']).toBe('application/json; charset=utf-8')
    expect((await run(sim, { url: s.url('/not-json') }).finished()).res).toMatchObject({ data: 'plain {text' })
    const bin = (await run(sim, { url: s.url('/json'), responseType: 'arraybuffer' }).finished()).res as RequestSuccessResult
    expect(bin.data).toBeInstanceOf(ArrayBuffer)
    expect([...new Uint8Array(bin.data as ArrayBuffer).subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf])
  })

  it('calls success whatever the status code', async () => {
    const s = await startServer()
    const { ok, res } = await run(simulator(), { url: s.url('/missing') }).finished()
    expect(ok).toBe(true)
    expect(res).toMatchObject({ statusCode: 404, data: { error: 'not found' } })
  })

  it("follows redirects (POST becomes GET on 302) unless redirect is 'manual'", async () => {
    const s = await startServer()
    const sim = simulator()
    const followed = (await run(sim, { url: s.url('/redirect'), method: 'POST', data: { a: 1 } }).finished()).res as RequestSuccessResult
    expect(followed).toMatchObject({ statusCode: 200, data: { method: 'GET', url: '/echo?from=redirect', body: '' } })
    const manual = (await run(sim, { url: s.url('/redirect'), redirect: 'manual' }).finished()).res as RequestSuccessResult
    expect(manual.statusCode).toBe(302)
    expect(manual.header.Location).toBe('/echo?from=redirect')
    expect((await run(sim, { url: s.url('/redirect-away') }).finished()).res.errMsg).toBe(REQUEST_ERR_MSG.notInDomainList)
  })

  it('refuses URLs outside loopback HTTP without any network use, and reports a refused connection', async () => {
    const s = await startServer()
    const sim = simulator()
    expect((await run(sim, { url: 'https://example.com/api' }).finished()).res.errMsg).toBe(REQUEST_ERR_MSG.notInDomainList)
    expect((await run(sim, { url: 'not a url' }).finished()).res.errMsg).toBe(REQUEST_ERR_MSG.invalidUrl)
    const missingUrl = run(sim, {} as RequestParams)
    expect((await missingUrl.finished()).res.errMsg).toBe(REQUEST_ERR_MSG.parameterError('url', 'String', 'Undefined'))
    expect(missingUrl.task.refusedBecause).toBe('parameter')
    expect(s.seen).toHaveLength(0)

    const port = s.port
    await s.close()
    expect((await run(sim, { url: `http://127.0.0.1:${port}/echo` }).finished()).res.errMsg).toBe(REQUEST_ERR_MSG.connectionRefused)
  })
})

describe('request-sim: request bodies', () => {
  it('sends a POST JSON body intact, with the default content-type and the host Referer', async () => {
    const s = await startServer()
    const data = { text: 'héllo 世界 😀', nested: { list: [1, 2.5, null, true] }, empty: '' }
    const { ok } = await run(simulator(), {
      url: s.url('/echo'),
      method: 'post',
      data,
      header: { 'X-Token': 't-1', Referer: 'https://attacker.example/' },
    }).finished()
    expect(ok).toBe(true)
    const seen = s.seen[0]
    expect(seen.method).toBe('POST')
    expect(seen.headers['content-type']).toBe('application/json')
    expect(seen.headers['x-token']).toBe('t-1')
    expect(seen.headers.referer).toBe('https://servicewechat.com/touristappid/devtools/page-frame.html')
    expect(JSON.parse(seen.body.toString('utf8'))).toEqual(data)
  })

  it('turns GET data into a query string, urlencoded data into a form, and sends strings and ArrayBuffers as they are', async () => {
    const s = await startServer()
    const sim = simulator()
    await run(sim, { url: s.url('/echo?x=0'), data: { q: 'a b&c', n: 2 } }).finished()
    expect(s.seen[0].url).toBe('/echo?x=0&q=a%20b%26c&n=2')
    expect(s.seen[0].body.length).toBe(0)

    await run(sim, {
      url: s.url('/echo'),
      method: 'PUT',
      header: { 'Content-Type': 'application/x-www-form-urlencoded' },
      data: { name: '张三', age: 3 },
    }).finished()
    expect(s.seen[1].body.toString('utf8')).toBe('name=%E5%BC%A0%E4%B8%89&age=3')

    await run(sim, { url: s.url('/echo'), method: 'POST', data: 'raw text ✓', header: { 'content-type': 'text/plain' } }).finished()
    expect(s.seen[2].body.toString('utf8')).toBe('raw text ✓')
    expect(s.seen[2].headers['content-type']).toBe('text/plain')

    const bytes = new Uint8Array([0, 1, 2, 254, 255])
    await run(sim, { url: s.url('/echo'), method: 'POST', data: bytes.buffer }).finished()
    expect([...s.seen[3].body]).toEqual([0, 1, 2, 254, 255])
  })
})

describe('request-sim: uni flavour', () => {
  it('returns a Promise without callbacks; the unreachable task still runs and occupies a slot', async () => {
    const s = await startServer()
    const sim = simulator()
    const promise = sim.uni.request({ url: s.url('/json') })
    expect(promise).toBeInstanceOf(Promise)
    expect(sim.active()).toBe(1)
    const res = await within(promise, 3000, 'the uni Promise')
    expect(res).toMatchObject({ errMsg: REQUEST_ERR_MSG.ok, statusCode: 200, data: JSON_PAYLOAD })
    expect(sim.tasks).toHaveLength(1)
    expect(sim.tasks[0].outcome).toBe(REQUEST_ERR_MSG.ok)
  })

  it('rejects the Promise with the fail result', async () => {
    const sim = simulator()
    await expect(within(sim.uni.request({ url: 'https://example.com/' }), 3000, 'the uni Promise')).rejects.toEqual({
      errMsg: REQUEST_ERR_MSG.notInDomainList,
    })
  })

  it('returns the task when any callback is given, calling wx.request with a copy of the options', async () => {
    const s = await startServer()
    const sim = simulator()
    const options = { url: s.url('/sse'), enableChunked: true, complete: () => {} }
    const task = sim.uni.request(options)
    expect(task).toBeInstanceOf(SimRequestTask)
    expect(task.__v_skip).toBe(true)
    const chunks: ArrayBuffer[] = []
    task.onChunkReceived((res) => chunks.push(res.data))
    await until(() => task.state === 'done', 3000, 'the request to end')
    await sleep(20)
    expect(concat(chunks).equals(SSE_BODY)).toBe(true)
    expect(options).toEqual({ url: s.url('/sse'), enableChunked: true, complete: options.complete })
  })
})

describe('request-sim: callbacks are asynchronous', () => {
  it('never calls a callback or listener inside request() or abort(), nor before the next macrotask', async () => {
    const s = await startServer()
    const sim = simulator({ maxRequests: 1 })
    const calls: string[] = []
    const cbs = (name: string) => ({
      success: () => calls.push(`${name}:success`),
      fail: () => calls.push(`${name}:fail`),
      complete: () => calls.push(`${name}:complete`),
    })
    const ok = sim.wx.request({ url: s.url('/echo'), ...cbs('ok') })
    ok.onHeadersReceived(() => calls.push('ok:headers'))
    sim.wx.request({ url: s.url('/echo'), ...cbs('limit') })
    sim.wx.request({ url: 'ftp://127.0.0.1/', ...cbs('url') })
    sim.wx.request({ ...cbs('param') } as unknown as RequestOptions)
    sim.uni.request({ url: s.url('/echo'), ...cbs('uni') })
    expect(calls).toEqual([])
    await Promise.resolve()
    expect(calls).toEqual([])
    await until(() => calls.includes('ok:complete'), 3000, 'the first request to complete')
    expect(calls.indexOf('ok:headers')).toBeLessThan(calls.indexOf('ok:success'))

    const aborted = sim.wx.request({ url: s.url('/echo'), ...cbs('abort') })
    aborted.abort()
    expect(calls).not.toContain('abort:fail')
    await until(() => calls.includes('abort:complete'), 3000, 'the abort to be reported')
  })

  it('reports a throwing callback as a script error and carries on', async () => {
    const s = await startServer()
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {})
    const sim = simulator()
    let completed = false
    const task = sim.wx.request({
      url: s.url('/echo'),
      success: () => {
        throw new Error('boom')
      },
      complete: () => (completed = true),
    })
    task.onHeadersReceived(() => {
      throw new Error('boom too')
    })
    await until(() => completed, 3000, 'complete')
    expect(errors).toHaveBeenCalledTimes(2)
    expect(errors.mock.calls.map((c) => c[0])).toEqual(['thirdScriptError at RequestTask.onHeadersReceived', 'thirdScriptError at request.success'])
  })
})
