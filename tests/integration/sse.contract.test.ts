/**
 * The event source's contract (`js_sdk/sse`), end to end on real sockets on loopback: hand-written `node:http`
 * servers (frames, ids, `retry:`, statuses, content types, stalls and ends under the test's control), the fault proxy
 * between them for dropped and dead links, and the real backend's event streams. The client runs over the `wx` and
 * `uni` flavours of the chunked request simulator (bodies cut at random byte offsets) and over Node's `fetch`
 * (`platform: 'web'`). Every wait is bounded; every server, simulator, proxy and source is closed after each test.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, beforeAll, afterAll, describe, expect, it, vi } from 'vitest'
import {
  createEventSource,
  LongLinkError,
  type EventSource,
  type EventSourceCloseEvent,
  type EventSourceOpenEvent,
  type EventSourceOptions,
  type EventSourcePlatform,
  type RequestHost,
  type SseEvent,
} from '../../uni_modules/longlink-socket/js_sdk/sse'
import type { ReconnectingEvent, StateChange } from '../../uni_modules/longlink-socket/js_sdk/types'
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy'
import {
  createRequestSimulator,
  type ChunkSplit,
  type RequestOptions,
  type RequestSimulator,
  type RequestSimulatorOptions,
} from '../support/request-sim'
import { sleep, until, within } from '../support/wait'
import { api, login, testBackend, type JsonBody, type TestBackend } from '../server/helpers'

// ---------------------------------------------------------------------------------------------------------------
// Servers

/** One request a test server received. */
interface Hit {
  /** 1-based, in arrival order. */
  n: number
  method: string
  url: URL
  headers: http.IncomingHttpHeaders
  /** Header names as the client spelled them. */
  rawNames: string[]
  body: string
  res: http.ServerResponse
  /** True once the response is over: ended by the server, or the client went away. */
  gone: boolean
}

interface Server {
  readonly hits: Hit[]
  url(path?: string): string
  /** The same path through `proxy`. */
  via(proxy: FaultProxy, path?: string): string
  port: number
}

const cleanups: (() => unknown)[] = []
const timers = new Set<ReturnType<typeof setTimeout>>()

/** A timer cleared after the test. */
function later(fn: () => void, ms: number): void {
  const timer = setTimeout(() => {
    timers.delete(timer)
    fn()
  }, ms)
  timers.add(timer)
}

/** A `node:http` server on 127.0.0.1:0 that hands every request (body read) to `handle`. */
async function serve(handle: (hit: Hit) => void): Promise<Server> {
  const hits: Hit[] = []
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = []
    req.on('data', (b: Buffer) => parts.push(b))
    req.on('end', () => {
      const hit: Hit = {
        n: hits.length + 1,
        method: req.method ?? '',
        url: new URL(req.url ?? '/', 'http://127.0.0.1'),
        headers: req.headers,
        rawNames: req.rawHeaders.filter((_, i) => i % 2 === 0),
        body: Buffer.concat(parts).toString('utf8'),
        res,
        gone: false,
      }
      res.on('close', () => (hit.gone = true))
      hits.push(hit)
      handle(hit)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  cleanups.push(() => {
    server.closeAllConnections()
    return new Promise((resolve) => server.close(resolve))
  })
  return {
    hits,
    port,
    url: (path = '/events') => `http://127.0.0.1:${port}${path}`,
    via: (proxy, path = '/events') => `http://127.0.0.1:${proxy.port}${path}`,
  }
}

/** Answers 200 `text/event-stream` (headers sent at once). */
function openStream(hit: Hit, headers: Record<string, string> = {}): void {
  // Spelled as many servers do: the simulator hands names over as sent, the source must not mind.
  hit.res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', ...headers })
  hit.res.flushHeaders()
}

function write(hit: Hit, chunk: string | Uint8Array): void {
  if (!hit.gone) hit.res.write(chunk)
}

/** Answers `status` with a JSON body (and `headers`). */
function answer(hit: Hit, status: number, headers: Record<string, string> = {}): void {
  hit.res.writeHead(status, { 'Content-Type': 'application/json', ...headers })
  hit.res.end(status === 204 ? undefined : JSON.stringify({ status }))
}

/**
 * Streams events `id: k / data: e<k>` every `every` ms, from the request's Last-Event-ID + 1, each written in two
 * pieces (so a cut between them leaves half an event behind). `stopAt(k, hit)` returning true stops before event k
 * (the stream stays open); `upTo` ends the response after that event.
 */
function ticker(hit: Hit, every: number, opts: { upTo?: number; stopAt?: (k: number, hit: Hit) => boolean } = {}): void {
  openStream(hit)
  let next = Number(hit.headers['last-event-id'] ?? 0) + 1
  const tick = () => {
    if (hit.gone) return
    if (opts.upTo !== undefined && next > opts.upTo) return void hit.res.end()
    if (opts.stopAt && opts.stopAt(next, hit)) return
    write(hit, `id: ${next}\ndata: e`)
    write(hit, `${next}\n\n`)
    next++
    later(tick, every)
  }
  tick()
}

/** The ids 1..n as strings. */
const ids = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => String(from + i))

// ---------------------------------------------------------------------------------------------------------------
// Clients

const sims: RequestSimulator[] = []
let seed = 0

/** A request simulator cutting bodies at random offsets (a new seed each time) unless `split` says otherwise. */
function simulator(options: RequestSimulatorOptions = {}): RequestSimulator {
  const sim = createRequestSimulator({ split: { mode: 'random', seed: ++seed, maxBytes: 16 }, ...options })
  sims.push(sim)
  return sim
}

interface Side {
  name: 'wx' | 'uni' | 'web'
  /** The `platform` option for a new source; `split` only applies to the simulator. */
  platform(split?: ChunkSplit): EventSourcePlatform
}

const SIDES: Side[] = [
  { name: 'wx', platform: (split) => simulator(split && { split }).wx },
  { name: 'uni', platform: (split) => simulator(split && { split }).uni as unknown as RequestHost },
  { name: 'web', platform: () => 'web' },
]

const sources: EventSource[] = []

/** A source with quick reconnects (tests override). */
function source(url: string, options: EventSourceOptions = {}): EventSource {
  const es = createEventSource(url, { reconnect: { min: 20, max: 200 }, ...options })
  sources.push(es)
  return es
}

/** Everything a source emits, in order, by kind. */
interface Seen {
  order: string[]
  open: EventSourceOpenEvent[]
  close: EventSourceCloseEvent[]
  error: LongLinkError[]
  reconnecting: ReconnectingEvent[]
  state: StateChange[]
  messages: SseEvent[]
}

function watch(es: EventSource): Seen {
  const seen: Seen = { order: [], open: [], close: [], error: [], reconnecting: [], state: [], messages: [] }
  const add =
    <T>(name: string, list: T[]) =>
    (payload: T) => (seen.order.push(name), list.push(payload))
  es.on('open', add('open', seen.open))
  es.on('close', add('close', seen.close))
  es.on('error', add('error', seen.error))
  es.on('reconnecting', add('reconnecting', seen.reconnecting))
  es.on('state', add('state', seen.state))
  es.on('message', add('message', seen.messages))
  return seen
}

/** Reads a source's iterator in the background: the events, and how it ended ('end' or the error it threw). */
function collect(es: EventSource): { events: SseEvent[]; ended: Promise<unknown> } {
  const events: SseEvent[] = []
  const iterator = es[Symbol.asyncIterator]()
  const ended = (async () => {
    try {
      for (;;) {
        const r = await iterator.next()
        if (r.done) return 'end'
        events.push(r.value)
      }
    } catch (error) {
      return error
    }
  })()
  return { events, ended }
}

/** The rejection of `p` (fails when it resolves). */
async function rejection(p: Promise<unknown>, ms = 3000): Promise<LongLinkError> {
  const outcome = await within(
    p.then(
      () => undefined,
      (error: unknown) => ({ error }),
    ),
    ms,
    'the promise to settle',
  )
  if (!outcome) throw new Error('expected a rejection, it resolved')
  expect(outcome.error).toBeInstanceOf(LongLinkError)
  return outcome.error as LongLinkError
}

/** The ids of events (those that carried one). */
const idsOf = (events: SseEvent[]) => events.map((e) => e.lastEventId)

afterEach(async () => {
  await Promise.all(sources.splice(0).map((es) => within(es.close(), 3000, 'close() after the test')))
  for (const sim of sims.splice(0)) sim.close()
  for (const timer of timers) clearTimeout(timer)
  timers.clear()
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  vi.unstubAllGlobals()
})

// ---------------------------------------------------------------------------------------------------------------
// The body of the parsing case: every rule of the standard that the bytes on the wire can exercise.

const utf8 = (s: string) => Buffer.from(s, 'utf8')
const SPEC_BODY = Buffer.concat([
  // A BOM, dropped by the decoder; a comment, never dispatched.
  Buffer.from([0xef, 0xbb, 0xbf]),
  utf8(': a comment\n'),
  // CR line endings; multi-byte characters (2, 3 and 4 bytes).
  utf8('data: héllo 🚲 中文\r\r'),
  // CRLF; a custom type; two data lines.
  utf8('id: 7\r\nevent: ride.update\r\ndata: a\r\ndata: b\r\n\r\n'),
  // An id with NUL is ignored: the event keeps id 7.
  utf8('id: 8\0x\ndata: nul\n\n'),
  utf8(':keep-alive\r\n'),
  // A block with only an id dispatches nothing, and commits the id.
  utf8('id: 9\n\n'),
  // A bare "data" field: an event with empty data.
  utf8('data\n\n'),
  // Invalid UTF-8 becomes U+FFFD.
  utf8('data: '),
  Buffer.from([0xff, 0xfe]),
  utf8(' ok '),
  Buffer.from([0xe2, 0x82]),
  utf8('\n\n'),
  // An empty event name means message; no space after the colon.
  utf8('event:\ndata:tight\n\n'),
  // Unfinished at the end: dropped, its id never committed.
  utf8('id: 10\ndata: unfinished\n'),
])
const SPEC_EVENTS: SseEvent[] = [
  { type: 'message', data: 'héllo 🚲 中文', lastEventId: '' },
  { type: 'ride.update', data: 'a\nb', lastEventId: '7', id: '7' },
  { type: 'message', data: 'nul', lastEventId: '7' },
  { type: 'message', data: '', lastEventId: '9' },
  { type: 'message', data: '\uFFFD\uFFFD ok \uFFFD', lastEventId: '9' },
  { type: 'message', data: 'tight', lastEventId: '9' },
]

/** Writes `body` in pieces of 1 to 3 bytes with a pause between them (fetch then reads it in many chunks). */
async function drip(hit: Hit, body: Uint8Array): Promise<void> {
  for (let at = 0; at < body.length && !hit.gone;) {
    const size = 1 + (at % 3)
    hit.res.write(body.subarray(at, at + size))
    at += size
    await sleep(1)
  }
  hit.res.end()
}

// ---------------------------------------------------------------------------------------------------------------

describe.each(SIDES)('event source over $name', (side) => {
  it('parses the stream as the standard says, whatever the chunking: BOM, CR/LF/CRLF, UTF-8, comments, ids, unfinished end', async () => {
    const server = await serve((hit) => {
      openStream(hit)
      if (side.name === 'web') void drip(hit, SPEC_BODY)
      else hit.res.end(SPEC_BODY)
    })
    // Byte by byte (every CR at a chunk end, every character split at every byte), then random cuts.
    const splits: (ChunkSplit | undefined)[] =
      side.name === 'web'
        ? [undefined]
        : [{ mode: 'fixed', bytes: 1 }, ...[1, 2, 3, 4].map((s): ChunkSplit => ({ mode: 'random', seed: s, maxBytes: 5 }))]
    for (const split of splits) {
      const es = source(server.url(), { platform: side.platform(split), reconnect: false })
      const seen = watch(es)
      const custom: SseEvent[] = []
      es.on('ride.update', (e) => custom.push(e))
      const read = collect(es)
      expect(await within(read.ended, 5000, 'the end of the one-shot stream')).toBe('end')
      expect(read.events).toEqual(SPEC_EVENTS)
      expect(seen.messages).toEqual(SPEC_EVENTS.filter((e) => e.type === 'message'))
      expect(custom).toEqual([SPEC_EVENTS[1]])
      // The unfinished block's id 10 is not committed.
      expect(es.lastEventId).toBe('9')
      expect(es.stats).toEqual({ events: SPEC_EVENTS.length, bytes: SPEC_BODY.length, reconnects: 0 })
      expect(seen.error).toEqual([])
      expect(seen.close).toEqual([expect.objectContaining({ reason: 'server', intentional: false, status: 200 })])
      expect(es.state).toBe('closed')
    }
  })

  it('resumes from the last committed id (an unfinished event is sent again), after the delay the server set with retry:', async () => {
    const server = await serve((hit) => {
      openStream(hit)
      if (hit.n === 1) {
        // Only digits count: the later bad values change nothing.
        hit.res.end('retry: 250\nretry: 1x\nretry: -5\nretry: 3.5\nretry:\nid: 1\ndata: one\n\nid: 2\ndata: tw')
      } else write(hit, 'id: 2\ndata: two\n\n')
    })
    const es = source(server.url(), { platform: side.platform(), reconnect: { min: 20, max: 100, jitter: 0 } })
    const seen = watch(es)
    await until(() => seen.messages.length === 2, 5000, 'two messages')
    expect(seen.messages.map((e) => e.data)).toEqual(['one', 'two'])
    expect(server.hits.map((h) => h.headers['last-event-id'])).toEqual([undefined, '1'])
    expect(seen.close).toEqual([expect.objectContaining({ reason: 'server', intentional: false })])
    expect(seen.reconnecting).toEqual([{ attempt: 1, delay: 250, reason: 'server' }])
    expect(seen.open.map((e) => e.reconnected)).toEqual([false, true])
    expect(es.stats.reconnects).toBe(1)
    expect(es.lastEventId).toBe('2')
  })

  it('loses and repeats nothing when the link is reset in the middle of an event', async () => {
    let proxy: FaultProxy | undefined
    const server = await serve((hit) =>
      ticker(hit, 10, {
        stopAt(k, h) {
          if (h.n !== 1 || k !== 6) return false
          // Half of event 6 goes out, then the link dies.
          write(h, 'id: 6\ndata: half')
          later(() => proxy!.mode('reset'), 100)
          return true
        },
      }),
    )
    proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: server.port } })
    cleanups.push(() => proxy!.close())
    const es = source(server.via(proxy), { platform: side.platform() })
    const seen = watch(es)
    await until(() => seen.messages.length >= 15, 5000, '15 messages')
    expect(idsOf(seen.messages)).toEqual(ids(1, seen.messages.length))
    expect(seen.messages.map((e) => e.data)).toEqual(ids(1, seen.messages.length).map((k) => `e${k}`))
    expect(server.hits.length).toBe(2)
    expect(server.hits[1].headers['last-event-id']).toBe('5')
    expect(seen.close).toEqual([expect.objectContaining({ reason: 'error', intentional: false })])
    expect(seen.error.map((e) => e.code)).toEqual(['SOCKET_ERROR'])
    expect(seen.reconnecting).toEqual([expect.objectContaining({ attempt: 1, reason: 'error' })])
    expect(es.stats.reconnects).toBe(1)
  })

  it('keeps a quiet stream whose comments arrive; replaces a dead one after idleTimeout, resuming after the last id', async () => {
    let proxy: FaultProxy | undefined
    const server = await serve((hit) => {
      if (hit.n > 1) return ticker(hit, 10, { upTo: 8 })
      ticker(hit, 10, {
        stopAt(k, h) {
          if (k !== 6) return false
          // Only comments for well over idleTimeout, then half an event, then the link goes dark.
          for (let i = 1; i <= 8; i++) later(() => write(h, ': keep-alive\n'), i * 100)
          later(() => write(h, 'id: 6\ndata: lost'), 850)
          later(() => proxy!.mode('sever'), 900)
          return true
        },
      })
    })
    proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: server.port } })
    cleanups.push(() => proxy!.close())
    const es = source(server.via(proxy), { platform: side.platform(), idleTimeout: 400 })
    const seen = watch(es)
    await until(() => seen.messages.length >= 5, 5000, '5 messages')
    await sleep(700)
    // The comments kept it alive.
    expect(server.hits.length).toBe(1)
    expect(es.state).toBe('open')
    await until(() => seen.messages.length >= 8, 5000, 'the events after the dead link')
    expect(idsOf(seen.messages)).toEqual(ids(1, 8))
    expect(server.hits[1].headers['last-event-id']).toBe('5')
    expect(seen.close[0]).toMatchObject({ reason: 'idle-timeout', intentional: false })
    expect(seen.reconnecting[0]).toMatchObject({ attempt: 1, reason: 'idle-timeout' })
    expect(seen.state).toContainEqual({ from: 'open', to: 'reconnecting', reason: 'idle-timeout' })
  })

  it('stops for good on 204: close (server, status 204), no error, no retry; the iterator ends cleanly', async () => {
    const server = await serve((hit) => answer(hit, 204))
    const es = source(server.url(), { platform: side.platform() })
    const seen = watch(es)
    const read = collect(es)
    const opened = es.open()
    expect(await within(read.ended, 3000, 'the iterator')).toBe('end')
    expect(seen.close).toEqual([expect.objectContaining({ reason: 'server', intentional: false, status: 204 })])
    expect(seen.error).toEqual([])
    expect((await rejection(opened)).code).toBe('CLOSED')
    await sleep(200)
    expect(server.hits.length).toBe(1)
    expect(seen.reconnecting).toEqual([])
    expect(seen.open).toEqual([])
    expect(es.state).toBe('closed')
    expect(es.readyState).toBe(2)
  })

  it.each([401, 404])('stops on %i: close with the status, then HTTP_STATUS; one request; the iterator and open() fail with it', async (status) => {
    const server = await serve((hit) => answer(hit, status))
    const es = source(server.url(), { platform: side.platform() })
    const seen = watch(es)
    const read = collect(es)
    const opened = es.open()
    const thrown = (await within(read.ended, 3000, 'the iterator')) as LongLinkError
    expect(thrown).toBeInstanceOf(LongLinkError)
    expect(thrown).toMatchObject({ code: 'HTTP_STATUS', status })
    expect(await rejection(opened)).toBe(thrown)
    expect(seen.order.filter((n) => n === 'close' || n === 'error')).toEqual(['close', 'error'])
    expect(seen.close).toEqual([expect.objectContaining({ reason: 'error', intentional: false, status })])
    expect(seen.error).toEqual([thrown])
    await sleep(200)
    expect(server.hits.length).toBe(1)
    expect(seen.reconnecting).toEqual([])
    expect(es.state).toBe('closed')
  })

  it('retries 500, 408 and 503 (an HTTP_STATUS error each), then opens', async () => {
    const statuses = [500, 408, 503]
    const server = await serve((hit) => (hit.n <= statuses.length ? answer(hit, statuses[hit.n - 1]) : ticker(hit, 10, { upTo: 2 })))
    const es = source(server.url(), { platform: side.platform() })
    const seen = watch(es)
    await within(es.open(), 5000, 'open after the refusals')
    expect(seen.error.map((e) => [e.code, e.status])).toEqual(statuses.map((s) => ['HTTP_STATUS', s]))
    expect(seen.reconnecting.map((r) => [r.attempt, r.reason])).toEqual([
      [1, 'error'],
      [2, 'error'],
      [3, 'error'],
    ])
    expect(seen.open).toEqual([expect.objectContaining({ status: 200, reconnected: false })])
    expect(seen.open[0].headers['content-type']).toBe('text/event-stream; charset=utf-8')
    await until(() => seen.messages.length === 2, 3000, 'the messages')
  })

  it('waits what Retry-After says after a 429', async () => {
    const server = await serve((hit) => (hit.n === 1 ? answer(hit, 429, { 'Retry-After': '1' }) : ticker(hit, 10, { upTo: 1 })))
    const es = source(server.url(), { platform: side.platform() })
    const seen = watch(es)
    await within(es.open(), 5000, 'open after the 429')
    expect(seen.error.map((e) => [e.code, e.status])).toEqual([['HTTP_STATUS', 429]])
    expect(seen.reconnecting).toEqual([{ attempt: 1, delay: 1000, reason: 'error' }])
    expect(server.hits.length).toBe(2)
  })

  it('stops with BAD_CONTENT_TYPE on a 200 that is not text/event-stream', async () => {
    const server = await serve((hit) => answer(hit, 200))
    const es = source(server.url(), { platform: side.platform() })
    const seen = watch(es)
    const read = collect(es)
    const thrown = (await within(read.ended, 3000, 'the iterator')) as LongLinkError
    expect(thrown).toMatchObject({ code: 'BAD_CONTENT_TYPE', status: 200 })
    expect(thrown.message).toContain('application/json')
    expect(seen.error).toEqual([thrown])
    expect(seen.close).toEqual([expect.objectContaining({ reason: 'error', status: 200 })])
    await sleep(200)
    expect(server.hits.length).toBe(1)
    expect(seen.open).toEqual([])
  })

  it('rotates a healthy stream after maxStreamMs: events contiguous, no close or reconnecting, not counted as reconnects', async () => {
    const server = await serve((hit) => ticker(hit, 15))
    const es = source(server.url(), { platform: side.platform(), maxStreamMs: 300 })
    const seen = watch(es)
    await until(() => server.hits.length >= 4 && seen.messages.length >= 40, 8000, 'four streams')
    const got = idsOf(seen.messages)
    expect(got).toEqual(ids(1, got.length))
    expect(seen.close).toEqual([])
    expect(seen.reconnecting).toEqual([])
    expect(seen.error).toEqual([])
    expect(seen.state.filter((s) => s.reason === 'rotate').length).toBeGreaterThanOrEqual(3)
    expect(seen.state.filter((s) => s.reason === 'rotate').every((s) => s.from === 'open' && s.to === 'connecting')).toBe(true)
    expect(seen.open[0].reconnected).toBe(false)
    expect(seen.open.slice(1).every((o) => o.reconnected)).toBe(true)
    expect(es.stats.reconnects).toBe(0)
    // Each new stream resumes after the last id the one before delivered.
    for (const hit of server.hits.slice(1, 4)) expect(Number(hit.headers['last-event-id'])).toBeGreaterThan(0)
    expect(server.hits.slice(0, 3).every((h) => h.gone)).toBe(true)
  })

  it('POSTs a JSON body for a one-shot stream (reconnect: false) that the iterator reads to its end', async () => {
    const body = { bike: 'b1', note: '中文 🚲', n: [1, 2] }
    const server = await serve((hit) => {
      openStream(hit)
      hit.res.write(`event: echo\ndata: ${hit.body}\n\n`)
      for (let i = 1; i <= 3; i++) hit.res.write(`id: ${i}\ndata: token ${i}\n\n`)
      hit.res.end()
    })
    const es = source(server.url('/summary'), { platform: side.platform(), method: 'POST', body, headers: { 'X-Trace': 't1' }, reconnect: false })
    const seen = watch(es)
    const read = collect(es)
    expect(await within(read.ended, 3000, 'the end of the stream')).toBe('end')
    expect(read.events.map((e) => [e.type, e.data])).toEqual([
      ['echo', JSON.stringify(body)],
      ['message', 'token 1'],
      ['message', 'token 2'],
      ['message', 'token 3'],
    ])
    const [hit] = server.hits
    expect(hit.method).toBe('POST')
    expect(JSON.parse(hit.body)).toEqual(body)
    expect(hit.headers['content-type']).toBe('application/json')
    expect(hit.headers.accept).toBe('text/event-stream')
    expect(hit.headers['x-trace']).toBe('t1')
    expect(seen.close).toEqual([expect.objectContaining({ reason: 'server', intentional: false, status: 200 })])
    expect(seen.error).toEqual([])
    expect(es.state).toBe('closed')
    await sleep(100)
    expect(server.hits.length).toBe(1)
  })

  it('delivers server events named like lifecycle events only to the iterator; custom names to their handlers; a throwing handler is reported and the stream goes on', async () => {
    let stream: Hit | undefined
    const server = await serve((hit) => {
      openStream(hit)
      stream = hit
    })
    const es = source(server.url(), { platform: side.platform() })
    const seen = watch(es)
    const read = collect(es)
    const updates: string[] = []
    const offUpdate = es.on('ride.update', (e) => {
      updates.push(e.data)
      offUpdate()
    })
    const all: string[] = []
    es.on('message', (e) => {
      all.push(e.data)
      if (e.data === 'm1') throw new Error('handler bug')
    })
    es.on('open', () => {
      throw new Error('open handler bug')
    })
    const states: StateChange[] = []
    const offState = es.on('state', (s) => states.push(s))
    es.on('never', () => {
      throw new Error('removed with off()')
    })
    es.off('never')
    await within(es.open(), 3000, 'open')
    offState()
    expect(states.map((s) => s.to)).toEqual(['connecting', 'open'])
    write(
      stream!,
      ['open', 'error', 'close', 'state', 'reconnecting'].map((t) => `event: ${t}\ndata: ${t}!\n\n`).join('') +
        'event: ride.update\ndata: u1\n\ndata: m1\n\nevent: message\ndata: m2\n\nevent: ride.update\ndata: u2\n\ndata: m3\n\nevent: never\ndata: n\n\n',
    )
    await until(() => read.events.length === 11, 3000, 'eleven events')
    expect(read.events.map((e) => e.type)).toEqual([
      'open',
      'error',
      'close',
      'state',
      'reconnecting',
      'ride.update',
      'message',
      'message',
      'ride.update',
      'message',
      'never',
    ])
    expect(read.events[0]).toEqual({ type: 'open', data: 'open!', lastEventId: '' })
    expect(seen.open).toEqual([expect.objectContaining({ status: 200, reconnected: false })])
    expect(seen.close).toEqual([])
    expect(seen.reconnecting).toEqual([])
    expect(seen.state.every((s) => typeof s.from === 'string' && typeof s.to === 'string')).toBe(true)
    expect(updates).toEqual(['u1'])
    expect(all).toEqual(['m1', 'm2', 'm3'])
    expect(seen.messages.map((e) => e.data)).toEqual(['m1', 'm2', 'm3'])
    expect(seen.error.map((e) => e.code)).toEqual(['HANDLER_ERROR', 'HANDLER_ERROR'])
    expect(seen.error[0].message).toContain('open')
    expect(seen.error[1].message).toContain('handler bug')
    expect(states.length).toBe(2)
    expect(es.state).toBe('open')
    expect(es.stats.events).toBe(11)
  })

  it('fails an iterator that falls queue.max behind with QUEUE_FULL after the events it holds; the source goes on', async () => {
    let stream: Hit | undefined
    const server = await serve((hit) => {
      openStream(hit)
      stream = hit
      for (let i = 1; i <= 12; i++) write(hit, `id: ${i}\ndata: e${i}\n\n`)
    })
    const es = source(server.url(), { platform: side.platform(), queue: { max: 5 } })
    const seen = watch(es)
    const slow = es[Symbol.asyncIterator]()
    await until(() => es.stats.events === 12, 3000, 'twelve events')
    const got: string[] = []
    let thrown: unknown
    try {
      for (;;) {
        const r = await within(slow.next(), 1000, 'the slow iterator')
        if (r.done) break
        got.push(r.value.data)
      }
    } catch (error) {
      thrown = error
    }
    expect(got).toEqual(['e1', 'e2', 'e3', 'e4', 'e5'])
    expect(thrown).toBeInstanceOf(LongLinkError)
    expect((thrown as LongLinkError).code).toBe('QUEUE_FULL')
    expect(seen.error.map((e) => e.code)).toEqual(['QUEUE_FULL'])
    expect(es.state).toBe('open')
    // A new iterator, and the handlers, still get what follows; leaving a loop only detaches that iterator.
    const fresh = collect(es)
    const leaving = (async () => {
      for await (const e of es) return e.data
    })()
    write(stream!, 'id: 13\ndata: e13\n\n')
    expect(await within(leaving, 3000, 'the loop that breaks')).toBe('e13')
    write(stream!, 'id: 14\ndata: e14\n\n')
    await until(() => fresh.events.length === 2 && seen.messages.length === 14, 3000, 'events 13 and 14')
    expect(fresh.events.map((e) => e.data)).toEqual(['e13', 'e14'])
    expect(es.state).toBe('open')
  })

  it('asks the auth hook before every attempt and sends what it returns; tokens never reach the logger', async () => {
    const server = await serve((hit) => ticker(hit, 5, { upTo: hit.n === 3 ? 100 : hit.n }))
    const contexts: unknown[] = []
    const lines: string[] = []
    const es = source(server.url('/events?room=1'), {
      platform: side.platform(),
      headers: { 'x-app': 'demo' },
      auth(context) {
        contexts.push(context)
        const n = contexts.length
        return { header: { Authorization: `Bearer secret-token-${n}` }, query: { token: `query-secret-${n}` } }
      },
      logger: (level, message) => lines.push(`${level} ${message}`),
    })
    await until(() => server.hits.length === 3 && es.state === 'open', 5000, 'three streams')
    server.hits.forEach((hit, i) => {
      expect(hit.headers.authorization).toBe(`Bearer secret-token-${i + 1}`)
      expect(hit.url.searchParams.get('token')).toBe(`query-secret-${i + 1}`)
      expect(hit.url.searchParams.get('room')).toBe('1')
      expect(hit.headers['x-app']).toBe('demo')
    })
    expect(contexts).toEqual([
      { attempt: 0, reason: 'open' },
      { attempt: 1, reason: 'reconnect' },
      { attempt: 2, reason: 'reconnect' },
    ])
    expect(server.hits.map((h) => h.headers['last-event-id'])).toEqual([undefined, '1', '2'])
    expect(lines.some((l) => l.includes('token=***'))).toBe(true)
    expect(lines.filter((l) => /secret/.test(l))).toEqual([])
  })

  it('reports state, readyState, lastEventId and stats; sends the lastEventId option; close() while open ends it for good', async () => {
    const body = 'id: 42\ndata: forty-two\n\n: just a comment\n'
    const server = await serve((hit) => {
      openStream(hit)
      write(hit, body)
    })
    const es = source(server.url(), { platform: side.platform(), lastEventId: '41' })
    const seen = watch(es)
    const read = collect(es)
    expect(es.state).toBe('idle')
    expect(es.readyState).toBe(0)
    expect(es.lastEventId).toBe('41')
    expect(es.stats).toEqual({ events: 0, bytes: 0, reconnects: 0 })
    expect(es.platform).toBe(side.name === 'web' ? 'web' : 'custom')
    await within(es.open(), 3000, 'open')
    expect(es.state).toBe('open')
    expect(es.readyState).toBe(1)
    const [hit] = server.hits
    expect(hit.headers['last-event-id']).toBe('41')
    expect(hit.rawNames).toContain('last-event-id')
    await until(() => es.stats.bytes === Buffer.byteLength(body), 3000, 'the whole body')
    expect(es.lastEventId).toBe('42')
    const stats = es.stats
    expect(stats).toEqual({ events: 1, bytes: Buffer.byteLength(body), reconnects: 0 })
    stats.events = 99
    expect(es.stats.events).toBe(1)

    const opened = es.open()
    await within(opened, 100, 'open() on an open source')
    await within(es.close(), 3000, 'close()')
    expect(es.state).toBe('closed')
    expect(es.readyState).toBe(2)
    expect(seen.close).toEqual([expect.objectContaining({ reason: 'user', intentional: true })])
    expect(seen.state.at(-1)).toEqual({ from: 'closing', to: 'closed', reason: 'user' })
    expect(await within(read.ended, 1000, 'the iterator')).toBe('end')
    expect(read.events.map((e) => e.data)).toEqual(['forty-two'])
    expect((await rejection(es.open())).code).toBe('CLOSED')
    await until(() => hit.gone, 3000, 'the server to see the request end')
    await sleep(150)
    expect(server.hits.length).toBe(1)
    await within(es.close(), 100, 'a second close()')
    expect(seen.close.length).toBe(1)
  })

  it('close() while connecting aborts the request and ends for good', async () => {
    const server = await serve(() => {})
    const es = source(server.url(), { platform: side.platform() })
    const seen = watch(es)
    const read = collect(es)
    const opened = es.open()
    await until(() => server.hits.length === 1, 3000, 'the request')
    expect(es.state).toBe('connecting')
    expect(es.readyState).toBe(0)
    await within(es.close(), 3000, 'close()')
    expect(seen.close).toEqual([expect.objectContaining({ reason: 'user', intentional: true })])
    expect((await rejection(opened)).code).toBe('CLOSED')
    expect(await within(read.ended, 1000, 'the iterator')).toBe('end')
    await until(() => server.hits[0].gone, 3000, 'the server to see the request go')
    await sleep(150)
    expect(server.hits.length).toBe(1)
    expect(es.state).toBe('closed')
    expect(seen.open).toEqual([])
  })

  it('gives up an attempt after connectTimeout and tries again', async () => {
    const server = await serve((hit) => (hit.n === 1 ? undefined : ticker(hit, 10, { upTo: 1 })))
    const es = source(server.url(), { platform: side.platform(), connectTimeout: 300 })
    const seen = watch(es)
    await within(es.open(), 5000, 'open after the timeout')
    expect(seen.error.map((e) => e.code)).toEqual(['CONNECT_TIMEOUT'])
    expect(seen.reconnecting).toEqual([expect.objectContaining({ attempt: 1, reason: 'connect-timeout' })])
    await until(() => server.hits[0].gone, 3000, 'the first request to be aborted')
  })
})

// ---------------------------------------------------------------------------------------------------------------

/** A mini-program host over a simulator, with the lifecycle APIs the tests drive. */
function lifecycleHost(sim: RequestSimulator, initialNetwork = 'wifi') {
  type Cb = (res?: unknown) => void
  type NetworkCb = (res: { isConnected: boolean; networkType: string }) => void
  const show = new Set<Cb>()
  const hide = new Set<Cb>()
  const network = new Set<NetworkCb>()
  const host: RequestHost = {
    request: (options) => sim.wx.request(options as unknown as RequestOptions),
    onAppShow: (cb) => void show.add(cb),
    offAppShow: (cb) => void (cb && show.delete(cb)),
    onAppHide: (cb) => void hide.add(cb),
    offAppHide: (cb) => void (cb && hide.delete(cb)),
    onNetworkStatusChange: (cb) => void network.add(cb),
    offNetworkStatusChange: (cb) => void (cb && network.delete(cb)),
    getNetworkType: (o) => void later(() => o.success?.({ networkType: initialNetwork }), 0),
  }
  return {
    host,
    listeners: () => show.size + hide.size + network.size,
    hide() {
      sim.hide()
      for (const cb of hide) cb()
    },
    show() {
      sim.show()
      for (const cb of show) cb()
    },
    network(isConnected: boolean, networkType: string) {
      for (const cb of network) cb({ isConnected, networkType })
    },
  }
}

describe('event source on a mini-program host: app and network lifecycle', () => {
  it('in the background: the request is killed, no attempt while hidden; back in front it resumes at once after the last id', async () => {
    const server = await serve((hit) => ticker(hit, 20))
    // WeChat's grace period is 5 s; shorter here, to the same effect.
    const sim = simulator({ backgroundKillMs: 400 })
    const app = lifecycleHost(sim)
    const es = source(server.url(), { platform: app.host })
    const seen = watch(es)
    await until(() => seen.messages.length >= 5, 3000, '5 messages')
    expect(app.listeners()).toBe(3)
    app.hide()
    // The platform kills the request after the grace period.
    await until(() => es.state === 'offline', 3000, 'offline after the kill')
    expect(server.hits[0].gone).toBe(true)
    const before = seen.messages.length
    await sleep(400)
    // Counted on the host: a request made now would be refused there and never reach the server.
    expect(sim.tasks.length).toBe(1)
    expect(seen.messages.length).toBe(before)
    expect(seen.reconnecting).toEqual([])
    // The kill is why the stream went: close reason background, and no error of its own.
    expect(seen.close).toEqual([expect.objectContaining({ reason: 'background', intentional: false })])
    expect(seen.error).toEqual([])
    const last = es.lastEventId
    app.show()
    await until(() => server.hits.length === 2, 1000, 'a request at once')
    expect(server.hits[1].headers['last-event-id']).toBe(last)
    await until(() => seen.messages.length >= before + 5, 3000, 'more messages')
    expect(idsOf(seen.messages)).toEqual(ids(1, seen.messages.length))
    expect(seen.state).toContainEqual({ from: 'offline', to: 'connecting', reason: 'foreground' })
    expect(es.stats.reconnects).toBe(1)
    await es.close()
    expect(app.listeners()).toBe(0)
  })

  it('drops the open stream when a rotation comes while hidden, and resumes after the last id when shown', async () => {
    const server = await serve((hit) => ticker(hit, 20))
    // No kill in the background (a pinned chat): only the rotation can end the stream.
    const sim = simulator({ killOnHide: false })
    const app = lifecycleHost(sim)
    const es = source(server.url(), { platform: app.host, maxStreamMs: 300 })
    const seen = watch(es)
    await until(() => seen.messages.length >= 3, 3000, '3 messages')
    app.hide()
    await until(() => es.state === 'offline', 3000, 'offline at the rotation')
    // The rotated stream is let go of at once, not left running behind an offline state.
    await until(() => server.hits[0].gone, 1000, 'the first request to be aborted')
    const before = seen.messages.length
    const last = es.lastEventId
    await sleep(200)
    expect(seen.messages.length).toBe(before)
    expect(es.readyState).toBe(0)
    app.show()
    await until(() => server.hits.length === 2, 1000, 'a request at once')
    expect(server.hits[1].headers['last-event-id']).toBe(last)
    await until(() => seen.messages.length >= before + 3, 3000, 'more messages')
    expect(idsOf(seen.messages)).toEqual(ids(1, seen.messages.length))
  })

  it('hidden and shown again within the grace period: the stream goes on, no new request', async () => {
    const server = await serve((hit) => ticker(hit, 20))
    const sim = simulator({ backgroundKillMs: 400 })
    const app = lifecycleHost(sim)
    const es = source(server.url(), { platform: app.host })
    const seen = watch(es)
    await until(() => seen.messages.length >= 3, 3000, '3 messages')
    app.hide()
    await sleep(150)
    app.show()
    const before = seen.messages.length
    await sleep(500)
    expect(seen.messages.length).toBeGreaterThan(before + 5)
    expect(idsOf(seen.messages)).toEqual(ids(1, seen.messages.length))
    expect(sim.tasks.length).toBe(1)
    expect(es.state).toBe('open')
    expect(seen.close).toEqual([])
    expect(seen.error).toEqual([])
  })

  it('offline from the start: no attempt until the network is back', async () => {
    const server = await serve((hit) => ticker(hit, 10, { upTo: 2 }))
    const app = lifecycleHost(simulator(), 'none')
    const es = source(server.url(), { platform: app.host })
    const seen = watch(es)
    await until(() => es.state === 'offline', 3000, 'offline')
    // getNetworkType answers later, as on devices: the first request may have left before it did, and was dropped.
    const made = server.hits.length
    expect(made).toBeLessThanOrEqual(1)
    await sleep(300)
    expect(server.hits.length).toBe(made)
    expect(server.hits.every((h) => h.gone)).toBe(true)
    app.network(true, '4g')
    await within(es.open(), 2000, 'open once online')
    expect(seen.state).toContainEqual({ from: 'offline', to: 'connecting', reason: 'network-restored' })
  })

  it('hidden while reconnecting: no attempt until shown', async () => {
    const server = await serve((hit) => (hit.n === 1 ? answer(hit, 503) : ticker(hit, 10, { upTo: 1 })))
    const sim = simulator()
    const app = lifecycleHost(sim)
    const es = source(server.url(), { platform: app.host, reconnect: { min: 200, max: 200, jitter: 0 } })
    const seen = watch(es)
    await until(() => es.state === 'reconnecting', 3000, 'reconnecting')
    app.hide()
    expect(es.state).toBe('offline')
    await sleep(500)
    expect(sim.tasks.length).toBe(1)
    app.show()
    await within(es.open(), 1000, 'open once shown')
    expect(seen.state).toContainEqual({ from: 'reconnecting', to: 'offline', reason: 'background' })
  })

  it('network none drops the stream and stops attempts; network back reconnects at once after the last id', async () => {
    const server = await serve((hit) => ticker(hit, 20))
    const sim = simulator()
    const app = lifecycleHost(sim)
    const es = source(server.url(), { platform: app.host, reconnect: { min: 5000, max: 5000 } })
    const seen = watch(es)
    await until(() => seen.messages.length >= 5, 3000, '5 messages')
    app.network(false, 'none')
    expect(es.state).toBe('offline')
    expect(seen.close).toEqual([expect.objectContaining({ reason: 'network-lost', intentional: false })])
    await until(() => server.hits[0].gone, 3000, 'the request to be dropped')
    const before = seen.messages.length
    await sleep(300)
    expect(server.hits.length).toBe(1)
    expect(seen.messages.length).toBe(before)
    app.network(true, 'wifi')
    // At once, not after the 5 s backoff.
    await until(() => server.hits.length === 2, 1000, 'a request at once')
    expect(server.hits[1].headers['last-event-id']).toBe(String(before))
    await until(() => seen.messages.length >= before + 5, 3000, 'more messages')
    expect(idsOf(seen.messages)).toEqual(ids(1, seen.messages.length))
    expect(seen.state).toContainEqual({ from: 'offline', to: 'connecting', reason: 'network-restored' })
    expect(seen.error).toEqual([])
  })
})

// ---------------------------------------------------------------------------------------------------------------

describe('event source: platforms and options', () => {
  it('stops with NOT_SUPPORTED on a host whose request returns a Promise', async () => {
    const es = source('http://127.0.0.1:9/events', { platform: { request: () => Promise.resolve({}) } })
    const seen = watch(es)
    const read = collect(es)
    const error = await rejection(es.open())
    expect(error.code).toBe('NOT_SUPPORTED')
    expect(await within(read.ended, 1000, 'the iterator')).toBe(error)
    expect(seen.error).toEqual([error])
    expect(es.state).toBe('closed')
  })

  it('stops with NOT_SUPPORTED on a host whose task has no onChunkReceived, and aborts that request', async () => {
    let calls = 0
    let aborted = 0
    const host: RequestHost = {
      request: () => {
        calls++
        return { abort: () => aborted++, onHeadersReceived() {} }
      },
    }
    const es = source('http://127.0.0.1:9/events', { platform: host })
    const error = await rejection(es.open())
    expect(error.code).toBe('NOT_SUPPORTED')
    expect(error.message).toContain('onChunkReceived')
    await sleep(100)
    expect(calls).toBe(1)
    expect(aborted).toBe(1)
  })

  it('dispatches nothing after close(), not even the rest of the chunk the closing handler was called from', async () => {
    const server = await serve((hit) => {
      openStream(hit)
      write(hit, 'event: token\ndata: a\n\nevent: done\ndata: whole\n\nevent: token\ndata: AFTER\n\n')
    })
    const es = source(server.url(), { platform: simulator({ split: { mode: 'none' } }).wx })
    const got: string[] = []
    es.on('token', (e) => got.push(e.data))
    es.on('done', (e) => {
      got.push(`done:${e.data}`)
      void es.close()
    })
    const read = collect(es)
    expect(await within(read.ended, 3000, 'the iterator to end')).toBe('end')
    expect(got).toEqual(['a', 'done:whole'])
    expect(read.events.map((e) => e.data)).toEqual(['a', 'whole'])
    expect(es.stats.events).toBe(2)
  })

  it('does not call a handler that another one removed during the dispatch, as a browser does', async () => {
    const server = await serve((hit) => {
      openStream(hit)
      write(hit, 'data: one\n\ndata: two\n\n')
    })
    const es = source(server.url(), { platform: simulator({ split: { mode: 'none' } }).wx })
    const got: string[] = []
    // A removes B during the first dispatch: B never hears a thing.
    const offA = es.on('message', (e) => {
      got.push(`a:${e.data}`)
      offB()
    })
    const offB = es.on('message', (e) => got.push(`b:${e.data}`))
    // Added during a dispatch: heard from the next event on.
    let added = false
    es.on('message', () => {
      if (added) return
      added = true
      es.on('message', (e) => got.push(`c:${e.data}`))
    })
    await until(() => got.filter((g) => g.startsWith('a:')).length === 2, 3000, 'both events')
    expect(got).toEqual(['a:one', 'a:two', 'c:two'])
    offA()
  })

  it('keeps a server retry: of 0 from turning into a request storm (at least 100 ms)', async () => {
    const server = await serve((hit) => {
      openStream(hit)
      hit.res.end('retry: 0\ndata: x\n\n')
    })
    const es = source(server.url(), { platform: simulator().wx, reconnect: { min: 1000, max: 5000, jitter: 0 } })
    const seen = watch(es)
    await until(() => seen.reconnecting.length >= 2, 3000, 'two reconnects')
    // Without the floor the delays would be 0 ms; with jitter 0 they are exactly the backoff of a 100 ms base.
    expect(seen.reconnecting.slice(0, 2).map((r) => r.delay)).toEqual([100, 200])
  })

  it('takes an event stream whose onHeadersReceived has no statusCode (WeChat DevTools) as 200, and waits for the status of anything else', async () => {
    const server = await serve((hit) => (hit.n === 1 ? answer(hit, 503) : ticker(hit, 20)))
    const sim = simulator()
    // The host's task hands onHeadersReceived its headers without the status, as DevTools does.
    const host: RequestHost = {
      request(options) {
        const task = sim.wx.request(options as unknown as RequestOptions)
        const on = task.onHeadersReceived.bind(task)
        ;(task as unknown as { onHeadersReceived: unknown }).onHeadersReceived = (cb: (res: { header: unknown }) => void) =>
          on((res) => cb({ header: res.header }))
        return task
      },
    }
    const es = source(server.url(), { platform: host })
    const seen = watch(es)
    await until(() => seen.messages.length >= 2, 5000, 'messages after the 503')
    // The 503 came with its status through success: retried, as a 503 must be.
    expect(seen.error.map((e) => [e.code, e.status])).toEqual([['HTTP_STATUS', 503]])
    expect(seen.open[0].status).toBe(200)
  })

  it('throws at once on bad input', () => {
    const sim = simulator()
    const cases: [string, EventSourceOptions | null, string][] = [
      ['ws://127.0.0.1/events', { platform: sim.wx }, 'INVALID_URL'],
      ['ftp://127.0.0.1/events', { platform: sim.wx }, 'INVALID_URL'],
      ['/events', { platform: sim.wx }, 'INVALID_URL'],
      ['//127.0.0.1/events', { platform: 'web' }, 'INVALID_URL'],
      ['http://', { platform: 'web' }, 'INVALID_URL'],
      ['http://127.0.0.1/e', null, 'INVALID_OPTION'],
      ['http://127.0.0.1/e', { platform: sim.wx, method: 'PUT' as 'GET' }, 'INVALID_OPTION'],
      ['http://127.0.0.1/e', { platform: sim.wx, body: 'x' }, 'INVALID_OPTION'],
      ['http://127.0.0.1/e', { platform: sim.wx, method: 'POST', body: 42 as unknown as string }, 'INVALID_OPTION'],
      ['http://127.0.0.1/e', { platform: sim.wx, lastEventId: 'a\nb' }, 'INVALID_OPTION'],
      // Bytes or a Map would go out as '{}' or index-keyed JSON.
      ['http://127.0.0.1/e', { platform: sim.wx, method: 'POST', body: new Uint8Array([1, 2]) as never }, 'INVALID_OPTION'],
      ['http://127.0.0.1/e', { platform: sim.wx, method: 'POST', body: new Map() as never }, 'INVALID_OPTION'],
      ['http://127.0.0.1/e', { platform: sim.wx, idleTimeout: -1 }, 'INVALID_OPTION'],
      ['http://127.0.0.1/e', { platform: sim.wx, maxStreamMs: '300' as unknown as number }, 'INVALID_OPTION'],
      ['http://127.0.0.1/e', { platform: sim.wx, connectTimeout: 0 }, 'INVALID_OPTION'],
      ['http://127.0.0.1/e', { platform: sim.wx, reconnect: { min: -1 } }, 'INVALID_OPTION'],
      ['http://127.0.0.1/e', { platform: sim.wx, queue: { max: 1.5 } }, 'INVALID_OPTION'],
      ['http://127.0.0.1/e', { platform: sim.wx, headers: { n: 1 as unknown as string } }, 'INVALID_OPTION'],
      ['http://127.0.0.1/e', { platform: sim.wx, auth: 'token' as never }, 'INVALID_OPTION'],
      ['http://127.0.0.1/e', { platform: 'bogus' as never }, 'INVALID_OPTION'],
      ['http://127.0.0.1/e', { platform: 'wx' }, 'UNSUPPORTED_PLATFORM'],
    ]
    for (const [url, options, code] of cases) {
      let thrown: unknown
      try {
        // Straight to createEventSource: `options` itself may be the bad input.
        sources.push(createEventSource(url, options as EventSourceOptions))
      } catch (error) {
        thrown = error
      }
      expect(thrown, `${url} ${JSON.stringify(options)}`).toBeInstanceOf(LongLinkError)
      expect((thrown as LongLinkError).code, `${url} ${JSON.stringify(options)}`).toBe(code)
    }
    // A path from the site's root is a URL in a browser.
    expect(source('/events', { platform: 'web' }).platform).toBe('web')
    const es = source('http://127.0.0.1/e', { platform: sim.wx })
    expect(() => es.on('message', 'nope' as never)).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }))
    vi.stubGlobal('fetch', undefined)
    expect(() => source('http://127.0.0.1/e', { platform: 'web' })).toThrow(expect.objectContaining({ code: 'UNSUPPORTED_PLATFORM' }))
  })

  it("uses the global wx for platform 'wx' and 'auto', and for 'uni' on a WeChat mini-program", async () => {
    const server = await serve((hit) => ticker(hit, 10, { upTo: 1 }))
    const sim = simulator()
    vi.stubGlobal('wx', sim.wx)
    const a = source(server.url(), { platform: 'wx' })
    const b = source(server.url(), { platform: 'uni' })
    expect([a.platform, b.platform]).toEqual(['wx', 'uni'])
    // 'auto' (the default) prefers wx.request in a mini-program.
    const c = source(server.url())
    expect(c.platform).toBe('wx')
    await c.close()
    await within(Promise.all([a.open(), b.open()]), 3000, 'both open')
    expect(sim.tasks.length).toBe(2)
    expect(sim.tasks.every((t) => t.options.enableChunked === true && t.options.responseType === 'arraybuffer')).toBe(true)
    // maxStreamMs defaults to 50 s on mini-programs: the platform's own timeout is set past it (and within its 60 s).
    expect(sim.tasks.map((t) => t.options.timeout)).toEqual([60_000, 60_000])
  })

  it('an empty id resets the last event id: the next request sends no Last-Event-ID', async () => {
    const server = await serve((hit) => {
      openStream(hit)
      if (hit.n === 1) hit.res.end('id: 5\ndata: a\n\nid\ndata: b\n\n')
      else write(hit, 'data: c\n\n')
    })
    const es = source(server.url(), { platform: simulator().wx })
    const seen = watch(es)
    await until(() => seen.messages.length === 3, 3000, 'three messages')
    expect(seen.messages.map((e) => [e.data, e.lastEventId, e.id])).toEqual([
      ['a', '5', '5'],
      ['b', '', ''],
      ['c', '', undefined],
    ])
    expect(server.hits.map((h) => h.headers['last-event-id'])).toEqual([undefined, undefined])
  })

  it('sends nothing when closed in the turn it was made', async () => {
    const server = await serve((hit) => ticker(hit, 10))
    const es = source(server.url(), { platform: simulator().wx })
    const seen = watch(es)
    await within(es.close(), 1000, 'close()')
    await sleep(100)
    expect(server.hits.length).toBe(0)
    expect(seen.close).toEqual([expect.objectContaining({ reason: 'user', intentional: true })])
    expect(es.state).toBe('closed')
  })

  it('holds 1000 events for a slow iterator by default', async () => {
    const server = await serve((hit) => {
      openStream(hit)
      let frames = ''
      for (let i = 1; i <= 1001; i++) frames += `id: ${i}\ndata: e${i}\n\n`
      write(hit, frames)
    })
    const es = source(server.url(), { platform: simulator({ split: { mode: 'none' } }).wx })
    const slow = es[Symbol.asyncIterator]()
    await until(() => es.stats.events === 1001, 3000, '1001 events')
    const got: string[] = []
    const thrown = await (async () => {
      try {
        for (let r = await slow.next(); !r.done; r = await slow.next()) got.push(r.value.lastEventId)
      } catch (error) {
        return error
      }
    })()
    expect(got).toEqual(ids(1, 1000))
    expect(thrown).toMatchObject({ code: 'QUEUE_FULL' })
  })

  it('does not count rotations as failed attempts: a failure after many rotations is retried; auth sees attempt 0', async () => {
    let failOnce = true
    const server = await serve((hit) => {
      if (hit.n === 6 && failOnce) {
        failOnce = false
        return answer(hit, 500)
      }
      ticker(hit, 10)
    })
    const contexts: { attempt: number; reason: string }[] = []
    const es = source(server.url(), {
      platform: simulator().wx,
      maxStreamMs: 150,
      // Rotations come faster than the link could prove stable: before, each one counted as a failure.
      reconnect: { min: 20, max: 100, maxRetries: 2, minUptime: 60_000 },
      auth: (context) => void contexts.push(context),
    })
    const seen = watch(es)
    await until(() => server.hits.length >= 8, 8000, 'five rotations, a 500 and the streams after it')
    expect(seen.error.map((e) => e.code)).toEqual(['HTTP_STATUS'])
    expect(es.state).not.toBe('closed')
    // The rotations before the 500 (with the first stream's attempt 0): before, they were attempts 1, 2, 3, 4.
    expect(contexts.filter((c) => c.reason === 'rotate').slice(0, 4)).toEqual(Array(4).fill({ attempt: 0, reason: 'rotate' }))
    const got = idsOf(seen.messages)
    expect(got).toEqual(ids(1, got.length))
  })

  it('sends Accept text/event-stream and no Cache-Control of its own (on H5 a CORS preflight; fetch adds its own)', async () => {
    const server = await serve((hit) => ticker(hit, 20))
    for (const platform of [simulator().wx, 'web' as const]) {
      const es = source(server.url(), { platform })
      await within(es.open(), 3000, 'open')
      await es.close()
    }
    expect(server.hits.map((hit) => hit.headers.accept)).toEqual(['text/event-stream', 'text/event-stream'])
    expect(server.hits[0].headers['cache-control']).toBeUndefined()
    // fetch's cache mode no-store adds Cache-Control itself, as the Fetch standard says (after any CORS check).
    expect(server.hits[1].headers['cache-control']).toBe('no-cache')
  })

  it('stops a one-shot stream that goes silent with TIMEOUT: its iterator throws, it does not end as if complete', async () => {
    const server = await serve((hit) => {
      openStream(hit)
      write(hit, 'data: first\n\n')
    })
    const es = source(server.url(), { platform: simulator().wx, reconnect: false, idleTimeout: 300 })
    const seen = watch(es)
    const read = collect(es)
    const ended = (await within(read.ended, 3000, 'the iterator to stop')) as LongLinkError
    expect(ended).toBeInstanceOf(LongLinkError)
    expect(ended.code).toBe('TIMEOUT')
    expect(read.events.map((e) => e.data)).toEqual(['first'])
    expect(seen.close).toEqual([expect.objectContaining({ reason: 'idle-timeout' })])
    expect(es.readyState).toBe(2)
    expect(server.hits.length).toBe(1)
  })

  it('waits the Retry-After of a 503 before the next attempt, and gives up after reconnect.maxRetries', async () => {
    const server = await serve((hit) => answer(hit, 503, hit.n === 1 ? { 'retry-after': '1' } : {}))
    const es = source(server.url(), { platform: simulator().wx, reconnect: { min: 20, max: 50, maxRetries: 2 } })
    const seen = watch(es)
    const error = await rejection(es.open(), 5000)
    expect(error.code).toBe('RETRIES_EXHAUSTED')
    expect(seen.reconnecting.map((r) => r.delay)[0]).toBe(1000)
    expect(seen.reconnecting.length).toBe(2)
    expect(server.hits.length).toBe(3)
    expect(es.state).toBe('closed')
  })
})

// ---------------------------------------------------------------------------------------------------------------

describe('event source against the backend', () => {
  let b: TestBackend
  beforeAll(async () => {
    b = await testBackend({}, { SSE_HEARTBEAT_MS: '200', ASSISTANT_TOKEN_MS: '2' })
  })
  afterAll(async () => {
    await b?.close()
  })

  async function untilRiding(token: string, bike: string): Promise<void> {
    const deadline = Date.now() + 5000
    for (;;) {
      const r = await api(b.url, 'GET', '/api/rides/active', { token })
      if (r.body.rides?.some((h: JsonBody) => h.bike === bike && h.status === 'riding')) return
      if (Date.now() > deadline) throw new Error(`${bike} not riding within 5 s`)
      await sleep(10)
    }
  }

  async function ride(token: string, bike: string): Promise<void> {
    expect((await api(b.url, 'POST', `/api/bikes/${bike}/reserve`, { token })).status).toBe(200)
    expect((await api(b.url, 'POST', `/api/bikes/${bike}/unlock`, { token })).status).toBe(202)
    await untilRiding(token, bike)
    expect((await api(b.url, 'POST', `/api/bikes/${bike}/lock`, { token })).status).toBe(200)
  }

  it.each(SIDES.filter((s) => s.name !== 'uni'))(
    "$name: the rider's ride events, across the server's own end of each stream, each once and in order",
    async (side) => {
      const rider = `sse_client_${side.name}`
      const token = await login(b.url, rider)
      const lines: string[] = []
      const es = source(`${b.url}/api/rides/events?maxStreamMs=1000`, {
        platform: side.platform(),
        auth: () => ({ header: { authorization: `Bearer ${token}` } }),
        logger: (level, message) => lines.push(message),
      })
      const seen = watch(es)
      const types: string[] = []
      for (const type of ['reserved', 'unlocking', 'riding', 'locked']) es.on(type, () => types.push(type))
      const read = collect(es)
      await within(es.open(), 3000, 'open')
      await ride(token, `${side.name}c1`)
      // The server ends the stream after 1 s: the source resumes after the last id.
      await until(() => seen.close.length >= 1 && es.state === 'open', 5000, 'the server to end a stream')
      await ride(token, `${side.name}c2`)
      await until(() => read.events.length >= 8, 5000, 'eight ride events')
      const stored = await b.store.rideEventsAfter(rider, 0, 100)
      expect(read.events.map((e) => [e.type, e.id, JSON.parse(e.data)])).toEqual(stored.map((e) => [e.type, String(e.id), e.data]))
      expect(types).toEqual(stored.map((e) => e.type))
      expect(seen.close[0]).toMatchObject({ reason: 'server', intentional: false })
      expect(lines.length).toBeGreaterThan(0)
      expect(lines.filter((l) => l.includes(token))).toEqual([])
    },
  )

  it.each(SIDES.filter((s) => s.name !== 'wx'))('$name: the assistant summary as a POST one-shot stream, read to its end', async (side) => {
    const token = await login(b.url, `sse_summary_${side.name}`)
    await ride(token, `${side.name}s1`)
    const es = source(`${b.url}/api/assistant/summary`, {
      platform: side.platform(),
      method: 'POST',
      body: { bike: `${side.name}s1` },
      headers: { authorization: `Bearer ${token}` },
      reconnect: false,
    })
    const seen = watch(es)
    const read = collect(es)
    expect(await within(read.ended, 5000, 'the summary')).toBe('end')
    const tokens = read.events.filter((e) => e.type === 'token')
    expect(tokens.length).toBeGreaterThan(20)
    expect(tokens.map((e) => e.id)).toEqual(tokens.map((_, i) => String(i)))
    expect(read.events.at(-1)).toMatchObject({ type: 'done', data: tokens.map((e) => e.data).join('') })
    expect(read.events.at(-1)!.data).toContain(`You rode bike ${side.name}s1 `)
    expect(seen.close).toEqual([expect.objectContaining({ reason: 'server', intentional: false, status: 200 })])
    expect(seen.error).toEqual([])
  })
})
