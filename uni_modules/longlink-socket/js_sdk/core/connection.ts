import { fail, messageOf, type LongLinkError } from '../errors'
import type { Adapter, Transport, TransportRequest, WireData } from '../transport'
import type {
  CloseReason,
  ConnectionEvents,
  ConnectionOptions,
  ConnectionState,
  ConnectionStats,
  SendData,
  TransitionReason,
} from '../types'
import { backoffDelay, nextStep } from './backoff'
import { isArrayBuffer, isView, toWire, wireLength } from './bytes'
import { Emitter } from './emitter'
import { Heartbeat } from './heartbeat'
import { watchLifecycle } from './lifecycle'
import { redactHeaders, redactUrl, toLogFn } from './log'
import { checkHeader, resolveOptions, withQuery } from './options'
import { SendQueue } from './queue'

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
  /**
   * Starts connecting (if not already) and resolves once the link is open. It keeps trying through failures
   * by the reconnect policy and rejects only when the connection stops: `close()` (CLOSED), `SOCKET_LIMIT`,
   * `RETRIES_EXHAUSTED`, or the first failure when `reconnect` is false.
   */
  open(): Promise<void>
  /**
   * Sends a string, ArrayBuffer, ArrayBufferView (exactly its bytes) or plain object (as JSON). While the link
   * is not open the message waits, in order, in the queue (QUEUE_FULL when it is full). Resolves when the
   * platform accepted the message; rejects with INVALID_DATA, QUEUE_FULL, CLOSED, SEND_FAILED or SOCKET_LIMIT.
   * On SocketTask hosts (wx, uni, my, tt), sends made in the same turn with no answer from the platform in between
   * share one fate, as do queued sends flushed together on open: they settle together once the platform answered
   * them all, and all reject with the first refusal if it refused any (a host that throws refuses too).
   * Await each send to get each message's own result.
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


type Timer = ReturnType<typeof setTimeout> | undefined

/**
 * The state machine behind `createConnection`. Written as a closure rather than a class: its internals stay
 * private for real, and they minify to short local names, which keeps the mini-program bundle small.
 */
export function createConnectionCore(adapter: Adapter, userOptions: ConnectionOptions): Connection {
  const options = resolveOptions(userOptions)
  const { auth } = userOptions
  const log = toLogFn(userOptions.logger, '[longlink]')
  const queue = new SendQueue(options.queueMax)
  const emitter = new Emitter<ConnectionEvents>(['open', 'message', 'close', 'error', 'reconnecting', 'state'], handlerFailed)
  const emit = emitter.emit.bind(emitter)
  const hb = options.heartbeat
  const heartbeat = hb && new Heartbeat(hb.interval, hb.timeout, sendPing, linkDead)
  // Read once: on the message path a local is cheaper than a property of an object each connection shapes anew.
  const isPong = hb && hb.isPong
  const policy = options.reconnect
  const counters = { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0, reconnects: 0, rtt: undefined as number | undefined }

  let state: ConnectionState = 'idle'
  let transport: Transport | undefined
  /** Bumped for every attempt and every drop: callbacks of an older link compare unequal and are ignored. */
  let generation = 0
  /** Failed attempts since the last stable link. */
  let attempt = 0
  let linksOpened = 0
  let openedAt = 0
  let networkDown = false
  let networkType: string | undefined
  let hidden = false
  let retryTimer: Timer
  let connectTimer: Timer
  let uptimeTimer: Timer
  let closeTimer: Timer
  let stopWatching: (() => void) | undefined
  let openWaiters: { resolve: () => void; reject: (error: LongLinkError) => void }[] = []
  let closeWaiters: (() => void)[] = []
  let closeRequest: { code: number; reason: string } | undefined

  /** The one place the state changes: emits `state` {from, to, reason} before any event that goes with it. */
  function transition(to: ConnectionState, reason: TransitionReason): void {
    const from = state
    if (from === to) return
    state = to
    log('debug', `state ${from} -> ${to} (${reason})`)
    emit('state', { from, to, reason })
  }

  /** Starts one attempt, unless the network is down or the app is hidden. */
  function connect(reason: TransitionReason): void {
    clearTimeout(retryTimer)
    if (networkDown || hidden) return transition('offline', hidden ? 'background' : 'network-lost')
    const mine = ++generation
    const current = () => mine === generation
    transition('connecting', reason)
    connectTimer = setTimeout(() => current() && down('connect-timeout', undefined, fail('CONNECT_TIMEOUT', `not open after ${options.connectTimeout} ms`)), options.connectTimeout)
    const request: TransportRequest = { url: options.url, header: options.header, protocols: options.protocols, timeout: options.timeout }
    Promise.resolve()
      .then(() => auth && auth({ attempt, reason }))
      .then(
        (extra) => {
          if (!current()) return
          const header = checkHeader(extra && extra.header, 'auth().header')
          if (extra) {
            request.url = withQuery(request.url, extra.query)
            if (header) request.header = { ...request.header, ...header }
          }
          startTransport(current, request)
        },
        (error) => {
          throw fail('AUTH_FAILED', `auth hook failed: ${messageOf(error)}`, error)
        },
      )
      // A failed hook, a bad header from it, or a platform that threw: this attempt failed, the next one may not.
      .catch((error) => current() && down('error', undefined, error.code ? error : fail('CONNECT_FAILED', messageOf(error), error)))
  }

  function startTransport(current: () => boolean, request: TransportRequest): void {
    log('debug', `connect ${redactUrl(request.url)} ${redactHeaders(request.header)} via ${adapter.name}`)
    const opened = adapter.open(request, {
      onOpen: () => current() && linkOpened(),
      onMessage: (data) => current() && received(data),
      onClose: (code, message) => current() && linkClosed(code, message),
      onError: (error) => current() && linkError(error),
    })
    // The adapter may have failed synchronously, superseding this attempt before it returned.
    if (current()) transport = opened
    else opened.close()
  }

  function linkOpened(): void {
    if (state !== 'connecting' || !transport) return
    clearTimeout(connectTimer)
    openedAt = Date.now()
    const reconnected = linksOpened++ > 0
    if (reconnected) counters.reconnects++
    // The attempt counter resets only after the link proved stable, so a flapping server still meets growing delays.
    if (policy) uptimeTimer = setTimeout(() => (attempt = 0), policy.minUptime)
    // The queue goes out before anything a `state`/`open` handler sends, so order is kept.
    for (const item of queue.drain()) write(transport, item.data).then(item.resolve, item.reject)
    heartbeat && heartbeat.start()
    transition('open', reconnected ? 'reconnect' : 'connected')
    for (const waiter of openWaiters.splice(0)) waiter.resolve()
    emit('open', { reconnected })
  }

  function received(data: WireData): void {
    if (heartbeat) {
      let pong = false
      try {
        pong = isPong!(data)
      } catch (error) {
        report(fail('HANDLER_ERROR', 'heartbeat.pong threw', error))
      }
      if (pong) return void (counters.rtt = heartbeat.pong())
      heartbeat.alive()
    }
    counters.messagesIn++
    counters.bytesIn += wireLength(data)
    emit('message', data)
  }

  function linkClosed(code: number, message: string): void {
    if (state === 'closing') finishClose()
    else if (state === 'connecting') down('error', undefined, fail('CONNECT_FAILED', `closed before open (${code} ${message})`))
    else down(hidden ? 'background' : 'server', { code, message })
  }

  function linkError(error: LongLinkError): void {
    if (state === 'closing') return
    if (error.code === 'SOCKET_LIMIT') {
      detach()
      stop(error)
      transition('closed', 'socket-limit')
      return report(error)
    }
    if (state === 'connecting') down('error', undefined, error.code === 'SOCKET_ERROR' ? fail('CONNECT_FAILED', error.message, error) : error)
    else down('error', { code: 1006, message: error.message }, error)
  }

  function linkDead(): void {
    if (state === 'open') down('heartbeat-timeout', { code: 1006, message: 'heartbeat timeout' })
  }

  /**
   * The link (or an attempt) is gone for `reason`: drop it, tell the user, and decide what comes next —
   * a scheduled retry, waiting offline, or stopping.
   */
  function down(reason: CloseReason, closed?: { code: number; message: string }, error?: LongLinkError): void {
    detach()
    const { to, because, stopError } = nextStep(policy, attempt, hidden || networkDown, reason, error)
    if (stopError) stop(stopError)
    transition(to, because)
    if (closed) emit('close', { code: closed.code, reason, intentional: false, message: closed.message })
    if (error) report(error)
    if (stopError && stopError !== error) report(stopError)
    if (to === 'reconnecting') {
      const delay = backoffDelay(++attempt, policy!)
      log('info', `retry ${attempt} in ${delay} ms (${reason})`)
      retryTimer = setTimeout(() => connect('reconnect'), delay)
      emit('reconnecting', { attempt, delay, reason })
    }
  }

  /** Lets go of the current link: its callbacks are ignored from now on, and its timers stop. */
  function detach(): void {
    generation++
    clearTimeout(connectTimer)
    clearTimeout(uptimeTimer)
    heartbeat && heartbeat.stop()
    openedAt = 0
    const old = transport
    transport = undefined
    // A dead link may refuse to close; it is forgotten either way.
    if (old) old.close(4000, 'replaced')
  }

  /** Ends the session: no more attempts or lifecycle listeners; waiting work fails with `error`. */
  function stop(error: LongLinkError): void {
    clearTimeout(retryTimer)
    stopWatching && stopWatching()
    stopWatching = undefined
    queue.rejectAll(error.code === 'CLOSED' ? error : fail('CLOSED', error.message, error))
    for (const waiter of openWaiters.splice(0)) waiter.reject(error)
  }

  function finishClose(): void {
    clearTimeout(closeTimer)
    detach()
    transition('closed', 'user')
    emit('close', { code: closeRequest!.code, reason: 'user', intentional: true, message: closeRequest!.reason })
    for (const resolve of closeWaiters.splice(0)) resolve()
  }

  // ---- network and app lifecycle ------------------------------------------------------------------------

  /** Something blocks the link (no network, app hidden): drop what is under way and wait for `resume`. */
  function pause(reason: 'network-lost' | 'background'): void {
    if (state === 'open') down(reason, { code: 1006, message: reason })
    else if (state === 'connecting') down(reason)
    else if (state === 'reconnecting') {
      clearTimeout(retryTimer)
      transition('offline', reason)
    }
  }

  /** Reconnects at once with a fresh backoff, when what blocked the link has cleared. */
  function resume(reason: TransitionReason): void {
    if ((state === 'offline' || state === 'reconnecting') && !networkDown && !hidden) {
      attempt = 0
      connect(reason)
    }
  }

  function networkChanged(online: boolean, type: string): void {
    const previous = networkType
    networkType = type
    if (!online) {
      if (!networkDown) {
        networkDown = true
        pause('network-lost')
      }
    } else if (networkDown) {
      networkDown = false
      resume('network-restored')
    } else if (previous && previous !== type && state === 'open') {
      // A switch between two live networks (wifi -> 4g) usually kills the TCP link without telling anyone.
      heartbeat && heartbeat.check()
    }
  }

  function appHidden(): void {
    if (hidden) return
    hidden = true
    heartbeat && heartbeat.stop()
    // An open link is kept: messages still arrive until the platform suspends the app (about 5 s on WeChat).
    if (state !== 'open') pause('background')
  }

  function appShown(): void {
    if (!hidden) return
    hidden = false
    if (state === 'open') heartbeat && heartbeat.check()
    else resume('foreground')
  }

  // ---- helpers -----------------------------------------------------------------------------------------

  function write(link: Transport, data: WireData): Promise<void> {
    counters.messagesOut++
    counters.bytesOut += wireLength(data)
    // Adapters reject with SEND_FAILED themselves: no wrapper promise on the hot path.
    return link.send(data)
  }

  function sendPing(): void {
    // While open, the transport is set: every path that drops it leaves `open` in the same synchronous step.
    if (state !== 'open') return
    let ping: WireData
    try {
      ping = encode(hb!.ping())
    } catch (error) {
      return report(fail('INVALID_OPTION', 'heartbeat.ping is not sendable', error))
    }
    // A failed ping needs no report of its own: the missing pong declares the link dead.
    transport!.send(ping).catch(() => {})
  }

  function handlerFailed(error: unknown, event: keyof ConnectionEvents): void {
    const wrapped = fail('HANDLER_ERROR', `"${String(event)}" handler threw: ${messageOf(error)}`, error)
    // Reporting a failing `error` handler through `error` again could loop forever.
    if (event === 'error') log('error', wrapped.message)
    else report(wrapped)
  }

  function report(error: LongLinkError): void {
    log('warn', `${error.code}: ${error.message}`)
    emit('error', error)
  }

  const api: Connection = {
    get state() {
      return state
    },
    get stats() {
      return { ...counters, uptime: openedAt ? Date.now() - openedAt : 0 }
    },
    get platform() {
      return adapter.name
    },
    on: (event, handler) => emitter.on(event, handler),
    off: (event, handler) => emitter.off(event, handler),

    open() {
      if (state === 'open') return Promise.resolve()
      if (state === 'closing') return new Promise<void>((resolve) => closeWaiters.push(resolve)).then(api.open)
      const ready = new Promise<void>((resolve, reject) => openWaiters.push({ resolve, reject }))
      if (state === 'idle' || state === 'closed') {
        attempt = linksOpened = 0
        stopWatching = watchLifecycle(adapter.lifecycle, { network: networkChanged, show: appShown, hide: appHidden })
        connect('open')
      }
      return ready
    },

    send(data) {
      let wire: WireData
      try {
        wire = encode(data)
      } catch (error) {
        return Promise.reject(error)
      }
      if (state === 'closing' || state === 'closed') return Promise.reject(fail('CLOSED', `connection ${state}`))
      if (state === 'open' && transport) return write(transport, wire)
      return new Promise<void>((resolve, reject) => queue.push({ data: wire, resolve, reject }))
    },

    close(code = 1000, reason = '') {
      if ((code !== 1000 && !(code >= 3000 && code <= 4999 && code % 1 === 0)) || typeof reason !== 'string') {
        return Promise.reject(fail('INVALID_OPTION', `close needs code 1000 or 3000-4999 and a string reason, got ${code}`))
      }
      if (state === 'closed') return Promise.resolve()
      const done = new Promise<void>((resolve) => closeWaiters.push(resolve))
      if (state === 'closing') return done
      closeRequest = { code, reason }
      stop(fail('CLOSED', 'closed by close()'))
      if (state === 'open' && transport) {
        transition('closing', 'user')
        closeTimer = setTimeout(finishClose, CLOSE_GRACE_MS)
        transport.close(code, reason)
      } else finishClose()
      return done
    },
  }
  return api
}
