/**
 * Carriers: the ways a session's messages come down (docs/session-protocol.md). A long-polling or short-polling loop,
 * an SSE stream (rotated before the platform's request cap) or a WebSocket that joined the session. Each reports
 * through {@link CarrierHooks}; none knows about cursors or the app: the session link does.
 */
import { fail, type LongLinkError } from '../errors'
import type { Adapter, Transport, TransportRequest } from '../transport'
import { createSseParser } from '../sse/parser'
import { parsePacket, type Packet } from './codec'
import type { Http, HttpResponse } from './http'
import { withQuery, type TransportName } from './options'

/** What a carrier reports. None is called after `stop()`. */
export interface CarrierHooks {
  /** The carrier proved itself (a poll answered, a stream's hello, a WebSocket's hello): it carries the session now. */
  ready(): void
  packet(packet: Packet): void
  /** The carrier cannot go on (before `ready`: at its first error; after: once its own retries are spent). */
  fail(error: LongLinkError): void
  /** The server no longer knows the session (410, or 4410 on a WebSocket). */
  gone(): void
  /** A newer carrier of the same session took over (409, or 4001 on a WebSocket). */
  stale(): void
}

/** One running carrier. */
export interface Carrier {
  stop(): void
  /** A WebSocket carrier sends packets itself; the HTTP carriers leave sending to POSTs. */
  send?(packet: string): void
}

/** What a carrier needs of its session. */
export interface CarrierContext {
  http: Http
  socket: Adapter | undefined
  /** The HTTP URL of the endpoint (with the app's and the auth hook's query). */
  base: string
  /** The attempt's request (its ws:// URL and headers). */
  request: TransportRequest
  sid: string
  /** The carrier number (`c`). */
  c: number
  /** The cursor to send: the last message delivered. */
  ack(): number
  hold: number
  pollInterval: number
}

/** Answer time allowed beyond what the server holds a request. */
export const REQUEST_SLACK_MS = 15_000
/** A stream the server has not rotated by then is ended by the client (under the mini-programs' 60 s request cap). */
export const CLIENT_ROTATE_MS = 50_000
/** Transient errors in a row a running carrier rides out before it gives up. */
const RETRIES = 4

/** The error an unexpected status stands for. */
export function statusError(response: HttpResponse): LongLinkError {
  let said = ''
  try {
    const body = JSON.parse(response.body) as { error?: string; message?: string }
    said = `${body.error || ''} ${body.message || ''}`.trim()
  } catch {
    said = response.body.slice(0, 100)
  }
  const error = fail(
    response.status === 401 || response.status === 403 ? 'NOT_AUTHORIZED' : 'HTTP_STATUS',
    `HTTP ${response.status}${said ? ` ${said}` : ''}`,
  )
  error.status = response.status
  return error
}

/** Routes a non-200 status: 410 gone, 409 stale, anything else an error. */
function onStatus(response: HttpResponse, hooks: CarrierHooks, retry: (error: LongLinkError) => void): void {
  if (response.status === 410) hooks.gone()
  else if (response.status === 409) hooks.stale()
  else retry(statusError(response))
}

/** Retries transient errors of a running carrier with a short backoff; before `ready`, or past RETRIES, it fails. */
function retrier(hooks: CarrierHooks, again: () => void, isStopped: () => boolean) {
  let errors = 0
  let timer: ReturnType<typeof setTimeout> | undefined
  let ready = false
  return {
    ok(): boolean {
      errors = 0
      if (ready) return false
      ready = true
      return true
    },
    retry(error: LongLinkError): void {
      if (isStopped()) return
      if (!ready || ++errors > RETRIES) return hooks.fail(error)
      timer = setTimeout(again, 250 * 2 ** errors)
    },
    stop: () => clearTimeout(timer),
  }
}

/** Long polling (held by the server) or short polling (every `pollInterval` ms). */
function pollCarrier(kind: 'long-polling' | 'polling', ctx: CarrierContext, hooks: CarrierHooks): Carrier {
  let stopped = false
  let abort: (() => void) | undefined
  let timer: ReturnType<typeof setTimeout> | undefined
  const next = (): void => {
    if (stopped) return
    const url = withQuery(ctx.base, { transport: kind, sid: ctx.sid, c: ctx.c, ack: ctx.ack() })
    const timeout = (kind === 'long-polling' ? ctx.hold : 0) + REQUEST_SLACK_MS
    abort = ctx.http.request({ url, method: 'GET', header: ctx.request.header, timeout }, (error, response) => {
      abort = undefined
      if (stopped) return
      if (error || response!.status !== 200) return error ? r.retry(error) : onStatus(response!, hooks, r.retry)
      let packet: Packet
      try {
        packet = parsePacket(response!.body)
      } catch (bad) {
        return r.retry(bad as LongLinkError)
      }
      if (r.ok()) hooks.ready()
      if (stopped) return
      hooks.packet(packet)
      if (stopped) return
      // Long polling asks again at once; short polling waits its interval (the cost it is: up to one interval late).
      if (kind === 'polling') timer = setTimeout(next, ctx.pollInterval)
      else next()
    })
  }
  const r = retrier(hooks, next, () => stopped)
  next()
  return {
    stop() {
      stopped = true
      clearTimeout(timer)
      r.stop()
      if (abort) abort()
    },
  }
}

/** An SSE stream: `hello` first, then one event per message (`id` = its number); reopened after each rotation. */
function sseCarrier(ctx: CarrierContext, hooks: CarrierHooks): Carrier {
  let stopped = false
  let abort: (() => void) | undefined
  let rotateTimer: ReturnType<typeof setTimeout> | undefined
  /** The current stream's hello arrived. */
  let helloSeen = false
  const parser = createSseParser({
    event(event) {
      if (stopped) return
      let data: unknown
      try {
        data = JSON.parse(event.data)
      } catch {
        return halt(fail('CONNECT_FAILED', 'not a LongLink stream event'))
      }
      if (event.type === 'hello') {
        helloSeen = true
        if (r.ok()) hooks.ready()
        const ack = (data as { ack?: unknown }).ack
        if (typeof ack === 'number' && !stopped) hooks.packet({ ack })
      } else if (event.type === 'message') hooks.packet({ seq: Number(event.lastEventId), m: [data as never] })
    },
  })
  /** Ends the current stream and reports `error` as a transient error. */
  const halt = (error: LongLinkError) => {
    end()
    r.retry(error)
  }
  const end = () => {
    clearTimeout(rotateTimer)
    if (abort) abort()
    abort = undefined
    parser.reset()
  }
  const open = (): void => {
    if (stopped) return
    end()
    helloSeen = false
    const url = withQuery(ctx.base, { transport: 'sse', sid: ctx.sid, c: ctx.c, ack: ctx.ack() })
    // No other header: in a browser every one beyond the simple ones costs a CORS preflight.
    const header = { ...ctx.request.header, Accept: 'text/event-stream' }
    let failed = false
    abort = ctx.http.stream.open(
      { url, method: 'GET', header, body: undefined, timeout: undefined },
      {
        headers(status, headers) {
          if (stopped) return
          if (status !== 200) {
            failed = true
            end()
            return onStatus({ status, body: '' }, hooks, r.retry)
          }
          if (!/^text\/event-stream/i.test(headers['content-type'] || ''))
            halt(fail('BAD_CONTENT_TYPE', `not an event stream: ${headers['content-type']}`))
        },
        chunk(bytes) {
          if (stopped) return
          try {
            parser.feed(bytes)
          } catch (error) {
            halt(fail('CONNECT_FAILED', 'stream handler failed', error))
          }
        },
        // The server ends a healthy stream after its maximum duration: the next one resumes from the cursor. A stream that
        // ended before its hello never worked (a proxy that answers and closes): an error, retried with a backoff.
        end: () => stopped || failed || (parser.end(), helloSeen ? open() : halt(fail('CONNECT_FAILED', 'the stream ended before its hello'))),
        fail: (error) => stopped || failed || halt(error),
      },
    )
    rotateTimer = setTimeout(open, CLIENT_ROTATE_MS)
  }
  const r = retrier(hooks, open, () => stopped)
  open()
  return {
    stop() {
      stopped = true
      r.stop()
      end()
    },
  }
}

/** A WebSocket joining the session: waits for the server's hello, answers `upgrade`, then carries packets both ways. */
function socketCarrier(ctx: CarrierContext, hooks: CarrierHooks): Carrier {
  let stopped = false
  let ready = false
  const url = withQuery(ctx.request.url, { transport: 'websocket', sid: ctx.sid, c: ctx.c, ack: ctx.ack() })
  const halt = (error: LongLinkError | 'gone' | 'stale') => {
    if (stopped) return
    stopped = true
    link.close(1000, '')
    if (error === 'gone') hooks.gone()
    else if (error === 'stale') hooks.stale()
    else hooks.fail(error)
  }
  // Assigned before any callback can use it: an adapter that fails inside `open` reports through onError, handled below.
  let link: Pick<Transport, 'send' | 'close'> = { close() {}, send: () => Promise.resolve() }
  const opened = ctx.socket!.open(
    { url, header: ctx.request.header, protocols: undefined, timeout: ctx.request.timeout },
    {
      onOpen() {},
      onMessage(data) {
        if (stopped) return
        let packet: Packet
        try {
          if (typeof data !== 'string') throw fail('CONNECT_FAILED', 'binary frame on a session WebSocket')
          packet = parsePacket(data)
        } catch (error) {
          return halt(error as LongLinkError)
        }
        if (packet.hello && !ready) {
          ready = true
          link.send(JSON.stringify({ upgrade: 1, ack: ctx.ack() })).catch(() => {})
          hooks.ready()
        }
        if (!stopped) hooks.packet(packet)
      },
      onClose: (code, reason) =>
        halt(
          code === 4410 ? 'gone' : code === 4001 || code === 4409 ? 'stale' : fail('CONNECT_FAILED', `session WebSocket closed (${code} ${reason})`),
        ),
      onError: (error) => halt(error),
    },
  )
  if (stopped) opened.close()
  else link = opened
  return {
    stop() {
      stopped = true
      link.close(1000, '')
    },
    send: (packet) => void link.send(packet).catch((error: LongLinkError) => halt(error)),
  }
}

/** Starts a carrier of `kind` for the session in `ctx`. */
export function startCarrier(kind: TransportName, ctx: CarrierContext, hooks: CarrierHooks): Carrier {
  if (kind === 'websocket') return socketCarrier(ctx, hooks)
  if (kind === 'sse') return sseCarrier(ctx, hooks)
  return pollCarrier(kind, ctx, hooks)
}
