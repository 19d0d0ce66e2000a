/**
 * A small raw client of the LongLink session protocol (docs/session-protocol.md) for the server tests: plain fetch
 * for the HTTP requests, a fetch-based SSE reader, and `ws` for WebSockets. It does only what a test tells it to
 * (no retries, no timers of its own), so each protocol step can be checked on its own. Every wait is bounded.
 */
import { WebSocket, type RawData } from 'ws'

// The bodies are JSON that each test reads as it expects.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = Record<string, any>

export interface RawAnswer {
  status: number
  body: Json
  headers: Headers
}

/** A message of a session as the client decodes it. */
export type RawMessage = string | Buffer | { close: [number, string] }

export type Query = Record<string, string | number | undefined>

export function llUrl(base: string, query: Query = {}): string {
  const params = new URLSearchParams()
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v))
  const q = params.toString()
  return q ? `${base}?${q}` : base
}

async function answer(res: Response): Promise<RawAnswer> {
  const text = await res.text()
  let body: Json = {}
  try {
    body = text ? (JSON.parse(text) as Json) : {}
  } catch {
    body = { text }
  }
  return { status: res.status, body, headers: res.headers }
}

/** GET at the path with `query`. */
export async function llGet(base: string, query: Query, init: RequestInit = {}): Promise<RawAnswer> {
  return answer(await fetch(llUrl(base, query), { signal: AbortSignal.timeout(10_000), ...init }))
}

/** POST `body` (JSON unless already a string) at the path with `query`. */
export async function llPost(base: string, query: Query, body: unknown, init: RequestInit = {}): Promise<RawAnswer> {
  return answer(
    await fetch(llUrl(base, query), {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
      ...init,
    }),
  )
}

/** A server item as the client sees it. */
export function decodeItem(item: unknown): RawMessage {
  if (typeof item === 'string') return item
  const o = item as { b?: string; close?: [number, string] }
  if (typeof o.b === 'string') return Buffer.from(o.b, 'base64')
  if (Array.isArray(o.close)) return { close: o.close }
  throw new Error(`not an item: ${JSON.stringify(item)}`)
}

/** An item for a message the client sends. */
export function encodeItem(message: RawMessage): unknown {
  if (typeof message === 'string') return message
  if (Buffer.isBuffer(message)) return { b: message.toString('base64') }
  return message
}

/** One session driven by hand: its sid, the client's cursor of server messages and the numbering of its own. */
export class RawSession {
  /** Server messages taken, in order, each once. */
  readonly received: RawMessage[] = []
  /** The client's cursor: server messages taken up to this number. */
  ack = 0
  /** The number of the client's last message. */
  seq = 0
  c = 1

  constructor(
    readonly base: string,
    readonly sid: string,
    readonly info: Json,
  ) {}

  static async open(base: string, transport = 'long-polling', extra: Query = {}, init: RequestInit = {}): Promise<RawSession> {
    const r = await llGet(base, { transport, open: 1, ...extra }, init)
    if (r.status !== 200) throw new Error(`open: ${r.status} ${JSON.stringify(r.body)}`)
    return new RawSession(base, r.body.sid as string, r.body)
  }

  /** Takes a packet's messages after the cursor (repeats skipped); returns those that were new. */
  take(packet: Json): RawMessage[] {
    const fresh: RawMessage[] = []
    const m = (packet.m ?? []) as unknown[]
    m.forEach((item, i) => {
      const n = (packet.seq as number) + i
      if (n !== this.ack + 1) {
        if (n > this.ack + 1) throw new Error(`gap: got ${n} after ${this.ack}`)
        return
      }
      this.ack = n
      const message = decodeItem(item)
      this.received.push(message)
      fresh.push(message)
    })
    return fresh
  }

  /** A down request (`long-polling` or `polling`); the answer's messages are taken unless `take` is false. */
  async poll(opts: { transport?: string; c?: number; ack?: number; take?: boolean; signal?: AbortSignal } = {}): Promise<RawAnswer> {
    const r = await llGet(
      this.base,
      { transport: opts.transport ?? 'long-polling', sid: this.sid, c: opts.c ?? this.c, ack: opts.ack ?? this.ack },
      opts.signal ? { signal: opts.signal } : {},
    )
    if (r.status === 200 && opts.take !== false) this.take(r.body)
    return r
  }

  /** POSTs `messages` numbered after the client's last one (or a raw packet when `packet` is given). */
  async post(messages: RawMessage[], opts: { packet?: unknown; transport?: string; seq?: number } = {}): Promise<RawAnswer> {
    const seq = opts.seq ?? this.seq + 1
    const packet = opts.packet ?? { seq, m: messages.map(encodeItem), ack: this.ack }
    const r = await llPost(this.base, { transport: opts.transport ?? 'long-polling', sid: this.sid }, packet)
    if (r.status === 200 && opts.packet === undefined && opts.seq === undefined) this.seq += messages.length
    return r
  }

  /** Polls (each poll held at most `hold`) until `count` messages in all were taken; bounded by `timeoutMs`. */
  async pollUntil(count: number, timeoutMs = 5000, transport = 'long-polling'): Promise<RawMessage[]> {
    const deadline = Date.now() + timeoutMs
    while (this.received.length < count) {
      if (Date.now() > deadline) throw new Error(`pollUntil: ${this.received.length} of ${count} within ${timeoutMs} ms`)
      const r = await this.poll({ transport })
      if (r.status !== 200) throw new Error(`poll: ${r.status} ${JSON.stringify(r.body)}`)
    }
    return this.received
  }

  stream(opts: { c?: number; ack?: number } = {}): RawSse {
    return new RawSse(llUrl(this.base, { transport: 'sse', sid: this.sid, c: opts.c ?? this.c, ack: opts.ack ?? this.ack }))
  }

  /** The WebSocket URL of a join (`ws://…?transport=websocket&sid=…&c=…&ack=…`). */
  joinUrl(opts: { c?: number; ack?: number } = {}): string {
    return llUrl(this.base.replace(/^http/, 'ws'), { transport: 'websocket', sid: this.sid, c: opts.c ?? this.c, ack: opts.ack ?? this.ack })
  }
}

export interface SseEvent {
  event?: string
  id?: string
  data: string
}

/** An SSE stream read with fetch: events as they arrive, comments counted. */
export class RawSse {
  readonly events: SseEvent[] = []
  comments = 0
  status = 0
  headers: Headers | undefined
  /** Resolves when the stream ends (either side). */
  readonly ended: Promise<void>
  private readonly abort = new AbortController()
  private waiters: (() => void)[] = []

  constructor(url: string) {
    this.ended = this.read(url).finally(() => this.wakeAll())
  }

  private wakeAll(): void {
    for (const w of this.waiters.splice(0)) w()
  }

  private async read(url: string): Promise<void> {
    try {
      const res = await fetch(url, { signal: this.abort.signal })
      this.status = res.status
      this.headers = res.headers
      if (!res.body) return
      const decoder = new TextDecoder()
      let buffer = ''
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true })
        let end: number
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          this.parse(buffer.slice(0, end))
          buffer = buffer.slice(end + 2)
        }
        this.wakeAll()
      }
    } catch {
      // Aborted by close(), or cut by the server: the stream has ended either way.
    }
  }

  private parse(block: string): void {
    const event: SseEvent = { data: '' }
    const data: string[] = []
    let any = false
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) {
        this.comments++
        continue
      }
      const i = line.indexOf(':')
      const field = i < 0 ? line : line.slice(0, i)
      const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '')
      if (field === 'data') data.push(value)
      else if (field === 'event') event.event = value
      else if (field === 'id') event.id = value
      else continue
      any = true
    }
    if (!any) return
    event.data = data.join('\n')
    this.events.push(event)
  }

  /** Waits until `check` holds (re-checked as events arrive), bounded. */
  async until(check: () => boolean, timeoutMs = 5000, what = 'events'): Promise<void> {
    const deadline = Date.now() + timeoutMs
    let done = false
    void this.ended.then(() => (done = true))
    while (!check()) {
      if (done) throw new Error(`stream ended before ${what}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 50))
        this.waiters.push(() => {
          clearTimeout(t)
          resolve()
        })
      })
    }
  }

  /** The message events (no `event:` field). */
  messages(): SseEvent[] {
    return this.events.filter((e) => e.event === undefined)
  }

  close(): void {
    this.abort.abort()
  }
}

/** A WebSocket with its messages queued for the test to take in order. */
export class RawWs {
  readonly messages: { data: string | Buffer; binary: boolean }[] = []
  readonly closed: Promise<{ code: number; reason: string }>
  readonly opened: Promise<void>
  private waiters: (() => void)[] = []

  constructor(
    url: string,
    readonly ws = new WebSocket(url),
  ) {
    ws.on('error', () => {})
    ws.on('message', (data: RawData, binary: boolean) => {
      const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)
      this.messages.push({ data: binary ? buf : buf.toString('utf8'), binary })
      for (const w of this.waiters.splice(0)) w()
    })
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString('utf8') })))
    void this.closed.then(() => {
      for (const w of this.waiters.splice(0)) w()
    })
    this.opened = new Promise((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)))
      ws.once('close', () => reject(new Error('closed before open')))
    })
    this.opened.catch(() => {})
  }

  /** The next message not taken yet, bounded. */
  async next(timeoutMs = 5000): Promise<{ data: string | Buffer; binary: boolean }> {
    const deadline = Date.now() + timeoutMs
    while (this.messages.length === 0) {
      const left = deadline - Date.now()
      if (left <= 0 || this.ws.readyState === WebSocket.CLOSED) throw new Error(`no message within ${timeoutMs} ms (state ${this.ws.readyState})`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(t)
          resolve()
        })
      })
    }
    return this.messages.shift()!
  }

  /** The next message parsed as JSON (session WebSockets). */
  async nextJson(timeoutMs = 5000): Promise<Json> {
    const m = await this.next(timeoutMs)
    return JSON.parse(String(m.data)) as Json
  }

  send(data: string | Buffer | Json): void {
    this.ws.send(typeof data === 'string' || Buffer.isBuffer(data) ? data : JSON.stringify(data))
  }

  close(code?: number, reason?: string): void {
    this.ws.close(code, reason)
  }
}
