import { createSupervisor, type SupervisedEvents } from '../core/supervisor'
import { fail, LongLinkError, messageOf } from '../errors'
import { createIteratorHub } from './iterator'
import { checkHttpUrl, resolveSourceOptions } from './options'
import { createSseParser, type SseEvent } from './parser'
import { resolveStreamTransport } from './platform'
import type { EventSource, EventSourceCloseEvent, EventSourceOpenEvent, EventSourceOptions } from './types'

/** Lifecycle event names: a server event named alike reaches only the iterators. */
const RESERVED = ['open', 'close', 'error', 'reconnecting', 'state']

/** The largest delay a timer takes (about 24.8 days). */
const MAX_DELAY = 2_147_483_647

type SourceEvents = SupervisedEvents & { open: EventSourceOpenEvent }

/** Statuses worth another attempt: the server's trouble, a timeout, or "too many requests". */
function retried(status: number): boolean {
  return status >= 500 || status === 408 || status === 429
}

/** A `Retry-After` value (seconds, or an HTTP date) in ms; 0 when absent or unreadable. */
export function retryAfterMs(value: string | undefined, now = Date.now()): number {
  if (!value) return 0
  const ms = /^\s*\d+\s*$/.test(value) ? Number(value) * 1000 : Date.parse(value) - now
  return ms > 0 ? Math.min(ms, MAX_DELAY) : 0
}

/**
 * Creates an event source and starts it after the current turn (see {@link EventSource}). Throws INVALID_URL,
 * INVALID_OPTION or UNSUPPORTED_PLATFORM at once for bad input.
 *
 * A driver of the core supervisor, which owns the states, backoff, connect deadline, auth hook and the network and
 * app rules; this file knows HTTP: statuses, content type, `Last-Event-ID`, `retry:`, idle streams and rotation.
 */
export function createEventSource(url: string, options: EventSourceOptions = {}): EventSource {
  if (options === null || typeof options !== 'object') throw fail('INVALID_OPTION', 'options must be an object')
  const transport = resolveStreamTransport(options.platform)
  const browser = transport.name === 'web'
  const o = resolveSourceOptions(checkHttpUrl(url, browser), options, !browser)
  const policy = o.reconnect
  const counters = { events: 0, bytes: 0 }
  const handlers = new Map<string, ((event: SseEvent) => void)[]>()
  const hub = createIteratorHub<SseEvent>(o.queueMax, (error) => sv.report(error))
  let abort: (() => void) | undefined
  /** Whether the stream the parser reads is the current, open one. */
  let live = () => false
  let lastByteAt = 0
  let idleTimer: ReturnType<typeof setTimeout> | undefined
  let rotateTimer: ReturnType<typeof setTimeout> | undefined
  /** A rotation is under way: the stream it opens is no reconnect. */
  let rotating = false
  let rotations = 0
  /** The source stopped with nothing wrong (`close()`, a 204, the end of a one-shot stream): iterators end cleanly. */
  let cleanStop = false
  let stopped: LongLinkError | undefined

  const parser = createSseParser(
    {
      event(event) {
        if (!live()) return
        counters.events++
        hub.push(event)
        // Lifecycle names never get here: their handlers are the supervisor's.
        const list = handlers.get(event.type) || []
        for (const handler of list) {
          // As in the browser: a handler another one removed during this dispatch is not called.
          if (handlers.get(event.type) !== list && !handlers.get(event.type)!.includes(handler)) continue
          try {
            handler(event)
          } catch (error) {
            sv.report(fail('HANDLER_ERROR', `"${event.type}" handler threw: ${messageOf(error)}`, error))
          }
        }
      },
      retry(ms) {
        // The server's `retry:` is the new base delay; the backoff grows from it as the policy says. Kept within what a
        // timer takes, and at least 100 ms: a `retry: 0` must not turn a failing server into a request storm.
        if (!policy) return
        policy.min = ms = Math.min(Math.max(ms, 100), MAX_DELAY)
        if (policy.max < ms) policy.max = ms
      },
    },
    o.lastEventId,
  )

  /**
   * Stops for good on an answer: `clean` when the server said it has nothing more (a 204, the end of a one-shot
   * stream), else with `error` reported after the `close` event.
   */
  function stopOn(error: LongLinkError, status: number, clean?: boolean): void {
    cleanStop = !!clean
    const reason = clean ? 'server' : 'error'
    sv.terminal(error, reason, { reason, intentional: false, status, message: error.message } as EventSourceCloseEvent as never)
    clean || sv.report(error)
  }

  /** An answer that is not a stream: retried (5xx, 408, 429, after Retry-After on 429/503) or the end of the source. */
  function refused(error: LongLinkError, status: number, headers: Record<string, string>): void {
    error.status = status
    if (!policy || !retried(status)) return stopOn(error, status)
    sv.down('error', error, error.message, undefined, status === 429 || status === 503 ? retryAfterMs(headers['retry-after']) : 0)
  }

  /** Checks for an idle stream: no byte for `idleTimeout` ms means it is dead. */
  function watchIdle(): void {
    const left = lastByteAt + o.idleTimeout - Date.now()
    const message = `no byte for ${o.idleTimeout} ms (idleTimeout)`
    if (left > 0) idleTimer = setTimeout(watchIdle, left)
    // A one-shot stream stops here: with an error that says so, so its iterator does not end as if complete.
    else if (live()) sv.down('idle-timeout', policy ? undefined : fail('TIMEOUT', message), message)
  }

  /** Ends a healthy stream before the platform's cap and resumes it from the last event id. */
  function rotate(): void {
    if (!live()) return
    // What is unfinished is dropped with its id uncommitted: the server sends it again after Last-Event-ID.
    parser.end()
    sv.retry('rotate')
    rotating = true
  }

  const sv = createSupervisor<SourceEvents>(o, transport, {
    begin(request, _extra, current) {
      // Names lower-cased (HTTP does not mind), so the user's headers replace the defaults whatever their case.
      // No cache-control: it would cost a CORS preflight on H5, where fetch's `cache: 'no-store'` does its work.
      const header: Record<string, string> = { accept: 'text/event-stream' }
      if (o.contentType) header['content-type'] = o.contentType
      for (const name in request.header) header[name.toLowerCase()] = request.header[name]!
      if (parser.lastEventId) header['last-event-id'] = parser.lastEventId
      parser.reset()
      let opened = false
      let status = 0
      const startedAt = Date.now()
      live = () => opened && current()
      const timeout = o.maxStreamMs ? o.maxStreamMs + 10_000 : undefined
      abort = transport.open(
        { url: request.url, method: o.method, header, body: o.body, timeout },
        {
          headers(code, headers) {
            if (!current()) return
            status = code
            // The server answered: whatever the status, a failure from here on cost it work (backoff climbs in full).
            sv.reached()
            if (code === 204) return stopOn(fail('CLOSED', 'HTTP 204: the server has no more events'), 204, true)
            if (!(code >= 200 && code <= 299)) return refused(fail('HTTP_STATUS', `HTTP ${code}`), code, headers)
            const type = headers['content-type'] || ''
            if (!/^text\/event-stream\s*(;|$)/i.test(type)) {
              return refused(fail('BAD_CONTENT_TYPE', `Content-Type is "${type.slice(0, 100)}", not text/event-stream`), code, headers)
            }
            opened = true
            lastByteAt = Date.now()
            if (o.idleTimeout) idleTimer = setTimeout(watchIdle, o.idleTimeout)
            // Counted from the request, as the platform's cap is.
            if (o.maxStreamMs) rotateTimer = setTimeout(rotate, o.maxStreamMs - (lastByteAt - startedAt))
            if (rotating) rotations++
            rotating = false
            sv.up({ status: code, headers })
          },
          chunk(bytes) {
            if (!live()) return
            counters.bytes += bytes.byteLength
            lastByteAt = Date.now()
            parser.feed(bytes)
          },
          end() {
            if (!current()) return
            if (!opened) return sv.failed(fail('CONNECT_FAILED', 'no status'))
            // An unfinished event at the end of a stream is dropped, its id not committed.
            parser.end()
            if (!policy) return stopOn(fail('CLOSED', 'the server ended the stream'), status, true)
            sv.down('server', undefined, 'the server ended the stream')
          },
          fail(error) {
            if (!current()) return
            if (error.code === 'NOT_SUPPORTED') return opened ? stopOn(error, status) : sv.terminal(error, 'error')
            sv.failed(opened && error.code === 'CONNECT_FAILED' ? fail('SOCKET_ERROR', error.message, error.cause) : error)
          },
        },
      )
    },
    drop() {
      clearTimeout(idleTimer)
      clearTimeout(rotateTimer)
      rotating = false
      live = () => false
      const cancel = abort
      abort = undefined
      cancel && cancel()
    },
    probe: () => undefined,
    end() {
      // Nothing more is dispatched, not even the rest of a chunk a handler that called close() is in.
      live = () => false
      // Aborting a request is immediate: the close is done once the supervisor has stopped the session.
      Promise.resolve().then(sv.ended)
    },
    stop(closed) {
      live = () => false
      const cause = closed.cause instanceof LongLinkError ? closed.cause : closed
      stopped = cause
      hub.end(cleanStop ? undefined : cause)
    },
  })

  function off(type: string, handler?: (payload: never) => void): void {
    if (RESERVED.includes(type)) return sv.off(type as never, handler as never)
    const list = handlers.get(type)
    if (list) handlers.set(type, handler ? list.filter((h) => h !== handler) : [])
  }

  // Like the browser's EventSource: the request goes out after the current turn, once handlers are attached.
  setTimeout(() => sv.state === 'idle' && sv.open().then(undefined, () => {}), 0)

  const source: EventSource = {
    get state() {
      return sv.state
    },
    get readyState() {
      const state = sv.state
      return state === 'open' ? 1 : state === 'closing' || state === 'closed' ? 2 : 0
    },
    get lastEventId() {
      return parser.lastEventId
    },
    get stats() {
      return { ...counters, reconnects: sv.reconnects - rotations }
    },
    get platform() {
      return transport.name
    },
    on(type: string, handler: (payload: never) => void) {
      if (typeof type !== 'string' || !type || typeof handler !== 'function')
        throw fail('INVALID_OPTION', 'on() needs a type (a non-empty string) and a function')
      if (RESERVED.includes(type)) return sv.on(type as never, handler as never)
      handlers.set(type, [...(handlers.get(type) || []), handler as (event: SseEvent) => void])
      return () => off(type, handler)
    },
    off,
    open() {
      if (stopped) return Promise.reject(stopped)
      return sv.open()
    },
    close() {
      if (!stopped) cleanStop = true
      return sv.close(1000, 'closed by close()')
    },
    [Symbol.asyncIterator]: () => hub.iterator(),
  }
  return source
}
