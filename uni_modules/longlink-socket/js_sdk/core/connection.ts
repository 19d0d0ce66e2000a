import { fail } from '../errors'
import type { Adapter, Transport, WireData } from '../transport'
import type { ConnectionEvents, ConnectionOptions, ConnectionState, ConnectionStats, SendData, TransportName } from '../types'
import { isArrayBuffer, isView, toWire, wireLength } from './bytes'
import { createHeartbeat } from './heartbeat'
import { resolveOptions } from './options'
import { createSendQueue } from './queue'
import { createSupervisor } from './supervisor'
import { watchTransport } from '../transports/resolve'

/** Set by the host's bundler: development builds explain more. */
declare const process: { env: { NODE_ENV?: string } }

/** How long `close()` waits for the platform to confirm before it calls the link closed anyway. */
const CLOSE_GRACE_MS = 1000

/**
 * One long connection: opens a link through a platform adapter, keeps it alive with a heartbeat, replaces it
 * when it dies, pauses in the background and while offline, and queues sends while there is no link.
 * Create it with `createConnection(options)`.
 */
export interface Connection {
  /** The current state (see ConnectionState). */
  readonly state: ConnectionState
  /** Traffic and health figures; a fresh object on every read. */
  readonly stats: ConnectionStats
  /** The adapter in use: `uni`, `wx`, `web`, `custom` or a custom adapter's name. */
  readonly platform: string
  /** The transport in use: `websocket`, `sse`, `long-polling` or `polling` (see the `transports` option). */
  readonly transport: TransportName
  /**
   * Starts connecting (if not already) and resolves once the link is open. It keeps trying through failures
   * by the reconnect policy and rejects only when the connection stops: `close()` (CLOSED), `SOCKET_LIMIT`,
   * `DOMAIN_NOT_ALLOWED`, `INSECURE_URL`, `RETRIES_EXHAUSTED`, or the first failure when `reconnect` is false.
   */
  open(): Promise<void>
  /**
   * Sends a string, ArrayBuffer, ArrayBufferView (exactly its bytes) or plain object (as JSON). While the link
   * is not open the message waits, in order, in the queue (QUEUE_FULL when it is full). Resolves when the
   * platform accepted this message; rejects with INVALID_DATA, QUEUE_FULL, CLOSED, SEND_FAILED or SOCKET_LIMIT.
   * Each send's result is its own, however many are made at once.
   */
  send(data: SendData): Promise<void>
  /**
   * Closes on purpose: no reconnect follows; queued sends and a pending `open()` reject with CLOSED.
   * Resolves once the link is closed. `code` is 1000 or 3000–4999.
   */
  close(code?: number, reason?: string): Promise<void>
  /** Adds an event handler; returns the function that removes it. */
  on<K extends keyof ConnectionEvents>(event: K, handler: (payload: ConnectionEvents[K]) => void): () => void
  /** Removes a handler added with `on` (or every handler of the event). */
  off<K extends keyof ConnectionEvents>(event: K, handler?: (payload: ConnectionEvents[K]) => void): void
}

/** Turns what `send` accepts into wire data, or throws INVALID_DATA. */
function encode(data: SendData): WireData {
  if (typeof data === 'string' || isArrayBuffer(data) || isView(data)) return toWire(data)
  if (data === null || typeof data !== 'object') throw fail('INVALID_DATA', `cannot send ${data === null ? 'null' : typeof data}`)
  try {
    return JSON.stringify(data)
  } catch (error) {
    throw fail('INVALID_DATA', 'not JSON-serialisable', error)
  }
}

/**
 * The core connection: a driver of the supervisor (which owns states, attempts, lifecycle and errors) that adds
 * encoding, the send queue, the heartbeat and stats. The send and receive paths stay here, short and direct.
 */
export function createConnectionCore(adapter: Adapter, userOptions: ConnectionOptions): Connection {
  const options = resolveOptions(userOptions)
  const queue = createSendQueue(options.queueMax)
  const hb = options.heartbeat
  const heartbeat = hb && createHeartbeat(hb.interval, hb.timeout, sendPing, linkDead)
  // Read once: on the message path a local is cheaper than a property of an object each connection shapes anew.
  const isPong = hb && hb.isPong
  const counters = { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0, rtt: undefined as number | undefined }
  /**
   * The ping waiting for its answer: a server that echoes it has answered, and the app never sees its own ping. Cleared
   * by the answer, so a message that merely looks like an old ping still reaches the app.
   */
  let lastPing: WireData | undefined
  /** Whether any ping was ever answered, or the never-answered heartbeat was reported: it is reported once. */
  let answered = false
  /** Links in a row dropped by a ping never answered, each opened by the first attempt after the one before. */
  let unanswered = 0
  /** Attempts since the last such drop. */
  let attempts = 0
  let transport: Transport | undefined
  let openedAt = 0
  let closeTimer: ReturnType<typeof setTimeout> | undefined

  const sv = createSupervisor<ConnectionEvents>(options, adapter, {
    begin(request, _extra, current) {
      attempts++
      const opened = adapter.open(request, {
        onOpen: () => current() && linkOpened(),
        onMessage: (data) => current() && received(data),
        onClose: (code, message) => current() && sv.closed(code, message),
        onError: (error) => current() && sv.failed(error),
      })
      // The adapter may have failed synchronously, superseding this attempt before it returned.
      if (current()) transport = opened
      else opened.close()
    },
    drop() {
      clearTimeout(closeTimer)
      heartbeat && heartbeat.stop()
      openedAt = 0
      const old = transport
      transport = undefined
      // A dead link may refuse to close; it is forgotten either way. A session link keeps its session for the next one.
      if (old) old.detach ? old.detach() : old.close(4000, 'replaced')
    },
    probe: () => heartbeat && heartbeat.check(),
    hide: () => heartbeat && heartbeat.stop(),
    end(code, reason) {
      closeTimer = setTimeout(sv.ended, CLOSE_GRACE_MS)
      transport!.close(code, reason)
    },
    stop(closed) {
      queue.rejectAll(closed)
      adapter.end && adapter.end()
    },
  })
  const emit = sv.emit
  watchTransport(adapter, sv)

  function linkOpened(): void {
    if (sv.state !== 'connecting' || !transport) return
    openedAt = Date.now()
    // The queue goes out before anything a `state`/`open` handler sends, so order is kept.
    for (const [data, resolve, reject] of queue.drain()) write(transport, data).then(resolve, reject)
    heartbeat && heartbeat.start()
    sv.up({})
  }

  function received(data: WireData): void {
    if (heartbeat) {
      let pong = data === lastPing
      try {
        pong = pong || isPong!(data)
      } catch (error) {
        sv.report(fail('HANDLER_ERROR', 'heartbeat.pong threw', error))
      }
      if (pong) {
        answered = true
        lastPing = undefined
        return void (counters.rtt = heartbeat.pong())
      }
      heartbeat.alive()
    }
    counters.messagesIn++
    counters.bytesIn += wireLength(data)
    emit('message', data)
  }

  function linkDead(): void {
    if (sv.state !== 'open') return
    // A server that does not answer pings drops every link the same way, and each new link opens at once. One silent
    // link alone may be a dead network (a busy server needs no pings, so none was ever answered): it takes two in a row,
    // with no failed attempt between, and no answer ever, to say so, once.
    unanswered = attempts === 1 ? unanswered + 1 : 1
    attempts = 0
    sv.down('heartbeat-timeout', undefined, 'heartbeat timeout')
    if (!answered && unanswered > 1) {
      answered = true
      sv.report(
        fail(
          'HEARTBEAT_UNANSWERED',
          process.env.NODE_ENV !== 'production'
            ? `heartbeat ping never answered within ${hb!.timeout} ms on two links in a row: the server must answer it (the default ping is the text "ping", its answer "pong"), or set heartbeat.ping/pong to the server's own format, or heartbeat: false`
            : 'heartbeat never answered',
        ),
      )
    }
  }

  function write(link: Transport, data: WireData): Promise<void> {
    counters.messagesOut++
    counters.bytesOut += wireLength(data)
    // Adapters reject with SEND_FAILED themselves: no wrapper promise on the hot path.
    return link.send(data)
  }

  function sendPing(): void {
    // While open, the transport is set: every path that drops it leaves `open` in the same synchronous step.
    if (sv.state !== 'open') return
    let ping: WireData
    try {
      ping = encode(hb!.ping())
    } catch (error) {
      return sv.report(fail('INVALID_OPTION', 'heartbeat.ping is not sendable', error))
    }
    // A failed ping needs no report of its own: the missing pong declares the link dead.
    transport!.send((lastPing = ping)).then(undefined, () => {})
  }

  const api: Connection = {
    get state() {
      return sv.state
    },
    get stats() {
      return { ...counters, reconnects: sv.reconnects, uptime: openedAt ? Date.now() - openedAt : 0 }
    },
    get platform() {
      return adapter.name
    },
    get transport() {
      return adapter.transport || 'websocket'
    },
    on: sv.on,
    off: sv.off,
    open: sv.open,

    send(data) {
      let wire: WireData
      try {
        wire = encode(data)
      } catch (error) {
        return Promise.reject(error)
      }
      const state = sv.state
      if (state === 'closing' || state === 'closed') return Promise.reject(fail('CLOSED', `connection ${state}`))
      if (state === 'open' && transport) return write(transport, wire)
      return new Promise<void>((resolve, reject) => queue.push([wire, resolve, reject]))
    },

    close(code = 1000, reason = '') {
      if ((code !== 1000 && !(code >= 3000 && code <= 4999 && code % 1 === 0)) || typeof reason !== 'string') {
        return Promise.reject(fail('INVALID_OPTION', `close needs code 1000 or 3000-4999 and a string reason, got ${code}`))
      }
      return sv.close(code, reason)
    },
  }
  return api
}
