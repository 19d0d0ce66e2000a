/**
 * Server-Sent Events for any Node HTTP backend: {@link openEventStream} turns a response into an event stream
 * (headers, `retry:`, heartbeat comments, backpressure, end after a maximum duration), {@link streamEventLog} serves a
 * durable, id-ordered log over it (replay after the client's `Last-Event-ID`, then live entries, none lost or sent
 * twice), and {@link createStreamRegistry} bounds how many streams one owner and one address keep open.
 *
 * Nothing here knows what the events mean: the caller supplies the log and decides who owns a stream.
 *
 * Frames follow the HTML standard's `text/event-stream` format: `event:`, `id:` and one `data:` line per line of the
 * data, then a blank line. Responses are never compressed: a compressing layer buffers, and an event that sits in a
 * buffer has not been delivered.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'

/** One event. `data` may span lines; `event` and `id` may not (nor contain NUL). */
export interface SseMessage {
  /** The event name (`addEventListener(name)`); absent means `message`. */
  event?: string
  /** The id the client sends back as `Last-Event-ID` when it reconnects. */
  id?: string | number
  data: string
}

export interface EventStreamOptions {
  /** Written first as `retry:`: how long the client waits before it reconnects (ms). Omitted when undefined. */
  retryMs?: number
  /** A `: hb` comment every this many ms (default 15 000; 0 turns it off), so idle proxies and idle timeouts see bytes. */
  heartbeatMs?: number
  /** Ends the stream after this long (ms), so the client resumes before a platform cuts the request. */
  maxDurationMs?: number
  /** Extra response headers. A `cache-control` here replaces the default `no-cache, no-transform`. */
  headers?: Record<string, string>
}

export interface EventStream {
  /** The resume point the client sent (`Last-Event-ID` header, else `?lastEventId=`); undefined when none. */
  readonly lastEventId: string | undefined
  /** True once the stream has ended, whoever ended it. */
  readonly isClosed: boolean
  /** Resolves when the stream ends: {@link close}, the maximum duration, or the client going away. */
  readonly closed: Promise<void>
  /**
   * Writes one event. Returns false when the socket is congested (wait for {@link drained} before sending more) or
   * the stream is closed. Throws a TypeError for an `event` or `id` with CR, LF or NUL, or non-string data.
   */
  send(message: SseMessage): boolean
  /** Writes a comment line (`: text`), which clients ignore. */
  comment(text: string): boolean
  /** Resolves once the socket takes writes again, or the stream has closed. */
  drained(): Promise<void>
  /** Calls `listener` once when the stream ends (at once when it already has); returns what removes it. */
  onClose(listener: () => void): () => void
  /** Ends the stream; idempotent. */
  close(): void
}

const DEFAULT_HEARTBEAT_MS = 15_000
/** What may not appear in a field that must stay on its own line. */
const LINE_BREAK_OR_NUL = /[\r\n\0]/

function checkField(value: string, name: string): void {
  if (LINE_BREAK_OR_NUL.test(value)) throw new TypeError(`sse: ${name} must not contain CR, LF or NUL`)
}

/** One event as wire text: `event:`, `id:`, a `data:` line per line of `data`, and the blank line that ends it. */
export function formatEvent(message: SseMessage): string {
  if (typeof message.data !== 'string') throw new TypeError('sse: data must be a string')
  let frame = ''
  if (message.event !== undefined) {
    checkField(message.event, 'event')
    frame += `event: ${message.event}\n`
  }
  if (message.id !== undefined) {
    const id = String(message.id)
    checkField(id, 'id')
    frame += `id: ${id}\n`
  }
  // A client joins the data lines with LF, so every line break (CRLF, CR, LF) becomes a line of its own.
  for (const line of message.data.split(/\r\n|\r|\n/)) frame += `data: ${line}\n`
  return frame + '\n'
}

/**
 * The resume point of a request: the `Last-Event-ID` header, else the `lastEventId` query parameter (for clients
 * that cannot set headers). Undefined when neither is present or both are empty.
 */
export function lastEventIdOf(req: IncomingMessage): string | undefined {
  const header = req.headers['last-event-id']
  if (typeof header === 'string' && header !== '') return header
  const url = req.url ?? ''
  const q = url.indexOf('?')
  if (q < 0) return undefined
  const hash = url.indexOf('#', q)
  const value = new URLSearchParams(url.slice(q + 1, hash < 0 ? undefined : hash)).get('lastEventId')
  return value === null || value === '' ? undefined : value
}

/**
 * Answers `req` with an event stream on `res`: status 200, the SSE headers (flushed at once, so the client knows the
 * stream is open before the first event), `retry:` when asked, and heartbeat comments. Timers stop when the stream
 * ends, whichever side ends it.
 */
export function openEventStream(req: IncomingMessage, res: ServerResponse, options: EventStreamOptions = {}): EventStream {
  const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS
  const { retryMs } = options
  if (retryMs !== undefined && (!Number.isSafeInteger(retryMs) || retryMs < 0)) throw new TypeError('sse: retryMs must be an integer ≥ 0')
  const listeners: (() => void)[] = []
  let isClosed = false
  let resolveClosed!: () => void
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve))
  let heartbeat: NodeJS.Timeout | undefined
  let deadline: NodeJS.Timeout | undefined

  const finish = (): void => {
    if (isClosed) return
    isClosed = true
    clearInterval(heartbeat)
    clearTimeout(deadline)
    resolveClosed()
    for (const listener of listeners.splice(0)) listener()
  }
  // A write racing the socket's end must not become an unhandled 'error' on the response.
  res.on('error', () => {})
  res.once('close', finish)

  const write = (text: string): boolean => (isClosed || res.destroyed || res.writableEnded ? false : res.write(text))

  const stream: EventStream = {
    lastEventId: lastEventIdOf(req),
    get isClosed() {
      return isClosed
    },
    closed,
    send: (message) => write(formatEvent(message)),
    comment(text) {
      checkField(text, 'comment')
      return write(`: ${text}\n\n`)
    },
    drained() {
      if (isClosed || !res.writableNeedDrain) return Promise.resolve()
      return new Promise<void>((resolve) => {
        const done = (): void => {
          res.off('drain', done)
          forget()
          resolve()
        }
        res.on('drain', done)
        const forget = stream.onClose(done)
      })
    },
    onClose(listener) {
      if (isClosed) {
        listener()
        return () => {}
      }
      listeners.push(listener)
      return () => {
        const i = listeners.indexOf(listener)
        if (i >= 0) listeners.splice(i, 1)
      }
    },
    close() {
      if (isClosed) return
      // A client that stopped reading would hold the socket until its buffer drained: it resumes from its last whole
      // event anyway, so the rest is dropped.
      if (res.writableNeedDrain) res.destroy()
      else res.end()
      finish()
    },
  }

  // The client may already be gone (it hung up while the request was being checked). Not `req.destroyed`: a request
  // whose body has been read is destroyed by then, while its response is alive.
  if (res.destroyed || res.writableEnded || res.socket?.destroyed) {
    finish()
    return stream
  }
  res.writeHead(200, {
    ...options.headers,
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': options.headers?.['cache-control'] ?? 'no-cache, no-transform',
    'x-accel-buffering': 'no',
    connection: 'keep-alive',
  })
  res.flushHeaders()
  res.socket?.setNoDelay(true)
  if (retryMs !== undefined) write(`retry: ${retryMs}\n\n`)
  if (heartbeatMs > 0) {
    heartbeat = setInterval(() => {
      // A congested socket already has bytes on the way; piling comments onto its buffer would only grow it.
      if (!res.writableNeedDrain) write(': hb\n\n')
    }, heartbeatMs)
    heartbeat.unref()
  }
  if (options.maxDurationMs !== undefined) {
    deadline = setTimeout(() => stream.close(), options.maxDurationMs)
    deadline.unref()
  }
  return stream
}

/** One entry of a durable log: ids grow strictly in the order entries become readable. */
export interface EventLogEntry {
  id: number
  event?: string
  data: string
}

/** A durable event log as {@link streamEventLog} reads it. */
export interface EventLog {
  /** The entries with an id above `afterId`, in id order, at most `limit`. */
  read(afterId: number, limit: number): Promise<EventLogEntry[]>
  /** Calls `wake` whenever entries may have been added; returns what stops it. */
  watch(wake: () => void): () => void
}

/** Options of {@link streamEventLog}. */
export interface StreamEventLogOptions {
  /** Send the entries after this id. */
  afterId: number
  /** Entries per read (default 100). */
  batchSize?: number
  /**
   * Also read every this many ms (default 0: never), for entries `watch` cannot announce: those another process
   * added to a log it shares with this one.
   */
  pollMs?: number
}

/**
 * Sends `log` on `stream`: every entry after `afterId`, then each new one as `watch` announces it, until the stream
 * closes. Entries always come from the log, read after the last id sent, so an entry added while older ones are
 * being sent is neither skipped nor sent twice; a wake-up during a read simply causes one more read. Waits for the
 * socket to drain when it is congested. Rejects when a read fails (the stream is left open for the caller to close).
 */
export async function streamEventLog(stream: EventStream, log: EventLog, options: StreamEventLogOptions): Promise<void> {
  const batchSize = options.batchSize ?? 100
  let cursor = options.afterId
  // Watching starts before the first read: an entry added between the read and the watch would otherwise wait.
  let pending = true
  let wake: (() => void) | undefined
  const stop = log.watch(() => {
    pending = true
    wake?.()
  })
  stream.onClose(() => wake?.())
  const poll = options.pollMs
    ? setInterval(() => {
        pending = true
        wake?.()
      }, options.pollMs)
    : undefined
  poll?.unref()
  try {
    while (!stream.isClosed) {
      if (!pending) {
        await new Promise<void>((resolve) => (wake = resolve))
        wake = undefined
        continue
      }
      pending = false
      for (;;) {
        const entries = await log.read(cursor, batchSize)
        for (const entry of entries) {
          if (stream.isClosed) return
          if (entry.id <= cursor) continue
          if (!stream.send({ event: entry.event, id: entry.id, data: entry.data })) await stream.drained()
          cursor = entry.id
        }
        if (entries.length < batchSize || stream.isClosed) break
      }
    }
  } finally {
    clearInterval(poll)
    stop()
  }
}

/** Bounds of a {@link StreamRegistry}. */
export interface StreamLimits {
  /** Open streams from one remote address; more are refused (see {@link StreamRegistry.full}). */
  perAddress: number
}

/** The open streams of a server, counted per address and per owner. */
export interface StreamRegistry {
  /** True when `address` already has its limit of open streams: refuse the request before opening another. */
  full(address: string): boolean
  /**
   * Counts an open stream until it closes. With `owner`, the owner's oldest streams beyond `owner.max` are closed
   * (a client that reconnects before the server noticed its old connection drop is not locked out by it).
   */
  track(stream: EventStream, address: string, owner?: { key: string; max: number }): void
  /** Open streams in all. */
  size(): number
  /** Closes every open stream (shutdown). */
  closeAll(): void
}

export function createStreamRegistry(limits: StreamLimits): StreamRegistry {
  const all = new Set<EventStream>()
  const perAddress = new Map<string, number>()
  const perOwner = new Map<string, EventStream[]>()
  return {
    full: (address) => (perAddress.get(address) ?? 0) >= limits.perAddress,
    track(stream, address, owner) {
      if (stream.isClosed) return
      all.add(stream)
      perAddress.set(address, (perAddress.get(address) ?? 0) + 1)
      if (owner) {
        const list = perOwner.get(owner.key) ?? []
        perOwner.set(owner.key, list)
        list.push(stream)
        stream.onClose(() => {
          const i = list.indexOf(stream)
          if (i >= 0) list.splice(i, 1)
          if (list.length === 0 && perOwner.get(owner.key) === list) perOwner.delete(owner.key)
        })
        for (const oldest of list.slice(0, Math.max(0, list.length - Math.max(1, owner.max)))) oldest.close()
      }
      stream.onClose(() => {
        all.delete(stream)
        const n = (perAddress.get(address) ?? 1) - 1
        if (n <= 0) perAddress.delete(address)
        else perAddress.set(address, n)
      })
    },
    size: () => all.size,
    closeAll() {
      for (const stream of [...all]) stream.close()
    },
  }
}
