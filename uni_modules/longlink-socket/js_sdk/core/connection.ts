import { ErrorCode, LongLinkError } from '../errors'
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
import { backoffDelay } from './backoff'
import { isArrayBuffer, isView, viewBytes, wireLength } from './bytes'
import { Emitter } from './emitter'
import { Heartbeat } from './heartbeat'
import { watchLifecycle } from './lifecycle'
import { toLogFn, type LogFn } from './logger'
import { resolveOptions, checkHeader, type ResolvedOptions } from './options'
import { SendQueue } from './queue'
import { redactHeaders, redactUrl } from './redact'

const EVENTS: readonly (keyof ConnectionEvents)[] = ['open', 'message', 'close', 'error', 'reconnecting', 'state']

/** How long `close()` waits for the platform to confirm before it calls the link closed anyway. */
const CLOSE_GRACE_MS = 1000

/** Turns what `send` accepts into wire data, or throws INVALID_DATA. */
function encode(data: SendData): WireData {
  if (typeof data === 'string' || isArrayBuffer(data)) return data
  if (isView(data)) return viewBytes(data)
  if (data !== null && typeof data === 'object') {
    try {
      return JSON.stringify(data)
    } catch (error) {
      throw new LongLinkError(ErrorCode.INVALID_DATA, 'The object could not be serialised as JSON', error)
    }
  }
  throw new LongLinkError(ErrorCode.INVALID_DATA, `Cannot send ${data === null ? 'null' : typeof data}: use a string, ArrayBuffer, typed array or plain object`)
}

function withQuery(url: string, query: Record<string, string | number | boolean> | undefined): string {
  if (!query) return url
  const pairs = Object.keys(query).map((k) => `${encodeURIComponent(k)}=${encodeURIComponent(String(query[k]))}`)
  if (pairs.length === 0) return url
  return url + (url.includes('?') ? '&' : '?') + pairs.join('&')
}

/**
 * One long connection: opens a link through a platform adapter, keeps it alive with a heartbeat, replaces it
 * when it dies, pauses in the background and while offline, and queues sends while there is no link.
 * Create it with `createConnection(options)`.
 */
export class Connection {
  private currentState: ConnectionState = 'idle'
  private readonly options: ResolvedOptions
  private readonly emitter: Emitter<ConnectionEvents>
  private readonly log: LogFn
  private readonly queue: SendQueue
  private readonly heartbeat: Heartbeat | undefined
  private transport: Transport | undefined
  /** Bumped for every attempt and every drop: callbacks of an older link compare unequal and are ignored. */
  private generation = 0
  /** Failed attempts since the last stable link. */
  private attempt = 0
  private linksOpened = 0
  private openedAt = 0
  private networkDown = false
  private networkType: string | undefined
  private hidden = false
  private retryTimer: ReturnType<typeof setTimeout> | undefined
  private connectTimer: ReturnType<typeof setTimeout> | undefined
  private uptimeTimer: ReturnType<typeof setTimeout> | undefined
  private closeTimer: ReturnType<typeof setTimeout> | undefined
  private stopWatching: (() => void) | undefined
  private openWaiters: { resolve: () => void; reject: (error: LongLinkError) => void }[] = []
  private closeWaiters: (() => void)[] = []
  private closeRequest: { code: number; reason: string } | undefined
  private readonly counters = { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0, reconnects: 0, rtt: undefined as number | undefined }

  /** @internal Use `createConnection`. */
  constructor(
    private readonly adapter: Adapter,
    private readonly auth: ConnectionOptions['auth'],
    options: ConnectionOptions,
  ) {
    this.options = resolveOptions(options)
    this.log = toLogFn(options.logger, '[longlink]')
    this.queue = new SendQueue(this.options.queueMax)
    this.emitter = new Emitter<ConnectionEvents>(EVENTS, (error, event) => this.handlerFailed(error, event))
    const hb = this.options.heartbeat
    this.heartbeat = hb && new Heartbeat(hb.interval, hb.timeout, {
      ping: () => this.sendPing(),
      dead: () => this.linkDead(),
    })
  }

  /** The current state (see ConnectionState). */
  get state(): ConnectionState {
    return this.currentState
  }

  /** Traffic and health figures; a fresh object on every read. */
  get stats(): ConnectionStats {
    return { ...this.counters, uptime: this.openedAt ? Date.now() - this.openedAt : 0 }
  }

  /** The adapter in use (`uni`, `wx`, `web` or a custom one). */
  get platform(): string {
    return this.adapter.name
  }

  /** Adds an event handler; returns the function that removes it. */
  on<K extends keyof ConnectionEvents>(event: K, handler: (payload: ConnectionEvents[K]) => void): () => void {
    return this.emitter.on(event, handler)
  }

  /** Removes a handler added with `on` (or every handler of the event). */
  off<K extends keyof ConnectionEvents>(event: K, handler?: (payload: ConnectionEvents[K]) => void): void {
    this.emitter.off(event, handler)
  }

  /**
   * Starts connecting (if not already) and resolves once the link is open. It keeps trying through failures
   * by the reconnect policy; it rejects only when the connection stops: `close()` (CLOSED), `SOCKET_LIMIT`,
   * `RETRIES_EXHAUSTED`, or the first failure when `reconnect` is false.
   */
  open(): Promise<void> {
    const state = this.currentState
    if (state === 'open') return Promise.resolve()
    if (state === 'closing') return new Promise<void>((resolve) => this.closeWaiters.push(resolve)).then(() => this.open())
    const ready = new Promise<void>((resolve, reject) => this.openWaiters.push({ resolve, reject }))
    if (state === 'idle' || state === 'closed') {
      this.attempt = 0
      this.linksOpened = 0
      this.closeRequest = undefined
      this.stopWatching = watchLifecycle(this.adapter.lifecycle, {
        network: (online, type) => this.networkChanged(online, type),
        show: () => this.appShown(),
        hide: () => this.appHidden(),
      })
      this.connect('open')
    }
    return ready
  }

  /**
   * Sends a string, ArrayBuffer, ArrayBufferView (exactly its bytes) or plain object (as JSON). While the link
   * is not open the message waits in order in the queue (rejecting with QUEUE_FULL when it is full).
   * Resolves when the platform accepted the message.
   */
  send(data: SendData): Promise<void> {
    let wire: WireData
    try {
      wire = encode(data)
    } catch (error) {
      return Promise.reject(error)
    }
    const state = this.currentState
    if (state === 'closing' || state === 'closed') {
      return Promise.reject(new LongLinkError(ErrorCode.CLOSED, `Cannot send: the connection is ${state}`))
    }
    if (state === 'open' && this.transport) return this.write(this.transport, wire)
    return new Promise<void>((resolve, reject) => this.queue.push({ data: wire, resolve, reject }))
  }

  /**
   * Closes on purpose: no reconnect follows, queued sends and a pending `open()` reject with CLOSED.
   * Resolves once the link is closed. `code` is 1000 or 3000–4999.
   */
  close(code = 1000, reason = ''): Promise<void> {
    if (code !== 1000 && !(Number.isInteger(code) && code >= 3000 && code <= 4999)) {
      return Promise.reject(new LongLinkError(ErrorCode.INVALID_OPTION, `close code must be 1000 or 3000–4999, got ${code}`))
    }
    if (typeof reason !== 'string') return Promise.reject(new LongLinkError(ErrorCode.INVALID_OPTION, 'close reason must be a string'))
    const state = this.currentState
    if (state === 'closed') return Promise.resolve()
    if (state === 'closing') return new Promise((resolve) => this.closeWaiters.push(resolve))
    this.closeRequest = { code, reason }
    this.stop(new LongLinkError(ErrorCode.CLOSED, 'The connection was closed by close()'))
    const transport = this.transport
    if (state === 'open' && transport) {
      const done = new Promise<void>((resolve) => this.closeWaiters.push(resolve))
      this.transition('closing', 'user')
      this.closeTimer = setTimeout(() => this.finishClose(code, reason), CLOSE_GRACE_MS)
      transport.close(code, reason)
      return done
    }
    this.detach()
    this.finishClose(code, reason)
    return Promise.resolve()
  }

  // ---- the state machine -------------------------------------------------------------------------------

  /** The one place the state changes: emits `state` {from, to, reason} before any event that goes with it. */
  private transition(to: ConnectionState, reason: TransitionReason): void {
    const from = this.currentState
    if (from === to) return
    this.currentState = to
    this.log('debug', `state ${from} -> ${to} (${reason})`)
    this.emitter.emit('state', { from, to, reason })
  }

  /** Starts one attempt, unless the network is down or the app is hidden. */
  private connect(reason: TransitionReason): void {
    this.clearTimer('retryTimer')
    if (this.networkDown || this.hidden) {
      this.transition('offline', this.hidden ? 'background' : 'network-lost')
      return
    }
    const generation = ++this.generation
    this.transition('connecting', reason)
    this.connectTimer = setTimeout(() => {
      if (generation !== this.generation) return
      const error = new LongLinkError(ErrorCode.CONNECT_TIMEOUT, `The link did not open within ${this.options.connectTimeout} ms`)
      this.down('connect-timeout', undefined, error)
    }, this.options.connectTimeout)
    const request: TransportRequest = {
      url: this.options.url,
      header: this.options.header,
      protocols: this.options.protocols,
      timeout: this.options.timeout,
    }
    if (!this.auth) {
      this.startTransport(generation, request)
      return
    }
    Promise.resolve()
      .then(() => this.auth!({ attempt: this.attempt, reason }))
      .then(
        (extra) => {
          if (generation !== this.generation) return
          const header = checkHeader(extra?.header, 'auth().header')
          this.startTransport(generation, {
            ...request,
            url: withQuery(request.url, extra?.query),
            header: header ? { ...request.header, ...header } : request.header,
          })
        },
        (error) => {
          if (generation !== this.generation) return
          this.down('error', undefined, new LongLinkError(ErrorCode.AUTH_FAILED, `The auth hook failed: ${(error as Error)?.message ?? error}`, error))
        },
      )
      .catch((error) => {
        // A bad header from the hook (INVALID_OPTION): fail this attempt and tell the user why.
        if (generation === this.generation) this.down('error', undefined, error as LongLinkError)
      })
  }

  private startTransport(generation: number, request: TransportRequest): void {
    this.log('debug', `connecting ${redactUrl(request.url)} via ${this.adapter.name} (attempt ${this.attempt}) header ${redactHeaders(request.header)}`)
    const mine = () => generation === this.generation
    let transport: Transport
    try {
      transport = this.adapter.open(request, {
        onOpen: () => mine() && this.linkOpened(),
        onMessage: (data) => mine() && this.received(data),
        onClose: (code, message) => mine() && this.linkClosed(code, message),
        onError: (error) => mine() && this.linkError(error),
      })
    } catch (error) {
      if (mine()) this.down('error', undefined, new LongLinkError(ErrorCode.CONNECT_FAILED, `The platform could not start a socket: ${(error as Error)?.message ?? error}`, error))
      return
    }
    // The adapter may have failed synchronously, superseding this attempt before it returned.
    if (mine()) this.transport = transport
    else transport.close()
  }

  private linkOpened(): void {
    if (this.currentState !== 'connecting' || !this.transport) return
    this.clearTimer('connectTimer')
    this.openedAt = Date.now()
    const reconnected = this.linksOpened++ > 0
    if (reconnected) this.counters.reconnects++
    const policy = this.options.reconnect
    // The attempt counter resets only after the link proved stable, so a flapping server still meets growing delays.
    if (policy) this.uptimeTimer = setTimeout(() => (this.attempt = 0), policy.minUptime)
    // The queue goes out before anything a `state`/`open` handler sends, so order is kept.
    const transport = this.transport
    for (const item of this.queue.drain()) this.write(transport, item.data).then(item.resolve, item.reject)
    this.heartbeat?.start()
    this.transition('open', reconnected ? 'reconnect' : 'connected')
    this.log('info', `open${reconnected ? ' (reconnected)' : ''}`)
    for (const waiter of this.openWaiters.splice(0)) waiter.resolve()
    this.emitter.emit('open', { reconnected })
  }

  private received(data: WireData): void {
    const hb = this.options.heartbeat
    if (hb && this.heartbeat) {
      let pong = false
      try {
        pong = hb.isPong(data)
      } catch (error) {
        this.report(new LongLinkError(ErrorCode.HANDLER_ERROR, 'heartbeat.pong threw', error))
      }
      if (pong) {
        this.counters.rtt = this.heartbeat.pong()
        return
      }
      this.heartbeat.alive()
    }
    this.counters.messagesIn++
    this.counters.bytesIn += wireLength(data)
    this.emitter.emit('message', data)
  }

  private linkClosed(code: number, message: string): void {
    if (this.currentState === 'closing') {
      this.finishClose(code, message)
      return
    }
    if (this.currentState === 'connecting') {
      const error = new LongLinkError(ErrorCode.CONNECT_FAILED, `The link closed before opening (code ${code}${message ? `, ${message}` : ''})`)
      this.down('error', undefined, error)
      return
    }
    this.down(this.hidden ? 'background' : 'server', { code, message })
  }

  private linkError(error: LongLinkError): void {
    const state = this.currentState
    if (state === 'closing') return
    if (error.code === ErrorCode.SOCKET_LIMIT) {
      this.detach()
      this.stop(error)
      this.transition('closed', 'socket-limit')
      this.report(error)
      return
    }
    if (state === 'connecting') {
      const failure = error.code === ErrorCode.SOCKET_ERROR ? new LongLinkError(ErrorCode.CONNECT_FAILED, error.message, error) : error
      this.down('error', undefined, failure)
      return
    }
    this.down('error', { code: 1006, message: error.message }, error)
  }

  private linkDead(): void {
    if (this.currentState !== 'open') return
    const silence = this.options.heartbeat!.interval + this.options.heartbeat!.timeout
    this.log('warn', `no traffic within ${silence} ms: the link is dead`)
    this.down('heartbeat-timeout', { code: 1006, message: 'heartbeat timeout' })
  }

  /**
   * The link (or an attempt) is gone for `reason`: drop it, tell the user, and decide what comes next —
   * a scheduled retry, waiting offline, or stopping.
   */
  private down(reason: CloseReason, closed?: { code: number; message: string }, error?: LongLinkError): void {
    this.detach()
    const policy = this.options.reconnect
    let to: ConnectionState
    let transitionReason: TransitionReason = reason
    let stopError: LongLinkError | undefined
    if (!policy) {
      to = 'closed'
      stopError = error ?? new LongLinkError(ErrorCode.CLOSED, `The link closed (${reason}) and reconnect is off`)
    } else if (this.hidden || this.networkDown) {
      to = 'offline'
    } else if (this.attempt >= policy.maxRetries) {
      to = 'closed'
      transitionReason = 'retries-exhausted'
      stopError = new LongLinkError(ErrorCode.RETRIES_EXHAUSTED, `Gave up after ${this.attempt} failed reconnect attempts`, error)
    } else {
      to = 'reconnecting'
    }
    if (stopError) this.stop(stopError)
    this.transition(to, transitionReason)
    if (closed) this.emitter.emit('close', { code: closed.code, reason, intentional: false, message: closed.message })
    if (error) this.report(error)
    if (stopError && stopError !== error) this.report(stopError)
    if (to === 'reconnecting') this.scheduleRetry(reason, policy!)
  }

  private scheduleRetry(reason: CloseReason, policy: NonNullable<ResolvedOptions['reconnect']>): void {
    const attempt = ++this.attempt
    const delay = backoffDelay(attempt, policy)
    this.log('info', `reconnect attempt ${attempt} in ${delay} ms (${reason})`)
    this.retryTimer = setTimeout(() => this.connect('reconnect'), delay)
    this.emitter.emit('reconnecting', { attempt, delay, reason })
  }

  /** Lets go of the current link: its callbacks are ignored from now on, and its timers stop. */
  private detach(): void {
    this.generation++
    this.clearTimer('connectTimer')
    this.clearTimer('uptimeTimer')
    this.heartbeat?.stop()
    this.openedAt = 0
    const transport = this.transport
    this.transport = undefined
    if (transport) {
      try {
        transport.close(4000, 'replaced')
      } catch {
        // A dead link may refuse to close; it is forgotten either way.
      }
    }
  }

  /** Ends the session: no more attempts or lifecycle listeners; waiting work fails with `error`. */
  private stop(error: LongLinkError): void {
    this.clearTimer('retryTimer')
    this.stopWatching?.()
    this.stopWatching = undefined
    const closed = error.code === ErrorCode.CLOSED ? error : new LongLinkError(ErrorCode.CLOSED, error.message, error)
    this.queue.rejectAll(closed)
    for (const waiter of this.openWaiters.splice(0)) waiter.reject(error)
  }

  private finishClose(code: number, message: string): void {
    this.clearTimer('closeTimer')
    this.detach()
    const request = this.closeRequest ?? { code, reason: message }
    this.transition('closed', 'user')
    this.log('info', `closed by the user (code ${request.code})`)
    this.emitter.emit('close', { code: request.code, reason: 'user', intentional: true, message: request.reason })
    for (const resolve of this.closeWaiters.splice(0)) resolve()
  }

  // ---- network and app lifecycle ------------------------------------------------------------------------

  private networkChanged(online: boolean, type: string): void {
    const previousType = this.networkType
    this.networkType = type
    if (!online) {
      if (this.networkDown) return
      this.networkDown = true
      this.log('info', 'network lost: attempts paused')
      const state = this.currentState
      if (state === 'open') this.down('network-lost', { code: 1006, message: 'network lost' })
      else if (state === 'connecting') this.down('network-lost')
      else if (state === 'reconnecting') {
        this.clearTimer('retryTimer')
        this.transition('offline', 'network-lost')
      }
      return
    }
    if (this.networkDown) {
      this.networkDown = false
      this.log('info', `network back (${type}): reconnecting now`)
      this.resume('network-restored')
      return
    }
    // A switch between two live networks (wifi -> 4g) usually kills the TCP link without telling anyone.
    if (previousType !== undefined && previousType !== type && this.currentState === 'open') this.heartbeat?.check()
  }

  private appHidden(): void {
    if (this.hidden) return
    this.hidden = true
    this.log('info', 'app hidden: heartbeat and attempts paused')
    this.heartbeat?.stop()
    const state = this.currentState
    if (state === 'connecting') this.down('background')
    else if (state === 'reconnecting') {
      this.clearTimer('retryTimer')
      this.transition('offline', 'background')
    }
  }

  private appShown(): void {
    if (!this.hidden) return
    this.hidden = false
    this.log('info', 'app shown')
    if (this.currentState === 'open') this.heartbeat?.check()
    else this.resume('foreground')
  }

  /** Reconnects at once with a fresh backoff, when something that blocked the link has cleared. */
  private resume(reason: TransitionReason): void {
    const state = this.currentState
    if (state !== 'offline' && state !== 'reconnecting') return
    if (this.networkDown || this.hidden) return
    this.attempt = 0
    this.connect(reason)
  }

  // ---- helpers -----------------------------------------------------------------------------------------

  private write(transport: Transport, data: WireData): Promise<void> {
    this.counters.messagesOut++
    this.counters.bytesOut += wireLength(data)
    return transport.send(data).catch((error: unknown) => {
      throw error instanceof LongLinkError && error.code === ErrorCode.SEND_FAILED
        ? error
        : new LongLinkError(ErrorCode.SEND_FAILED, `The platform failed to send: ${(error as Error)?.message ?? error}`, error)
    })
  }

  private sendPing(): void {
    const transport = this.transport
    if (!transport || this.currentState !== 'open') return
    let ping: WireData
    try {
      ping = encode(this.options.heartbeat!.ping())
    } catch (error) {
      this.report(new LongLinkError(ErrorCode.INVALID_OPTION, 'heartbeat.ping gave nothing sendable', error))
      return
    }
    // A failed ping needs no report of its own: the missing pong declares the link dead.
    transport.send(ping).catch(() => {})
  }

  private handlerFailed(error: unknown, event: keyof ConnectionEvents): void {
    const wrapped = new LongLinkError(ErrorCode.HANDLER_ERROR, `A "${String(event)}" handler threw: ${(error as Error)?.message ?? error}`, error)
    if (event === 'error') {
      // Reporting it through `error` again could loop forever.
      this.log('error', wrapped.message)
      return
    }
    this.report(wrapped)
  }

  private report(error: LongLinkError): void {
    this.log(error.code === ErrorCode.HANDLER_ERROR ? 'error' : 'warn', `${error.code}: ${error.message}`)
    this.emitter.emit('error', error)
  }

  private clearTimer(name: 'retryTimer' | 'connectTimer' | 'uptimeTimer' | 'closeTimer'): void {
    const timer = this[name]
    if (timer !== undefined) clearTimeout(timer)
    this[name] = undefined
  }
}
