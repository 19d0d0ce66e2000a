import { fail, LongLinkError, messageOf, refusedForGood } from '../errors'
import type { Adapter, LifecycleHost, TransportRequest } from '../transport'
import type { AuthResult, CloseReason, ConnectionEvents, ConnectionState, TransitionReason } from '../types'
import { backoffDelay } from './backoff'
import { createEmitter } from './emitter'
import { redactUrl } from './log'
import { attemptRequest, type ResolvedOptions } from './options'

/**
 * The events every supervised client emits: the core's, with any message type. A client may add fields to `open`
 * (MQTT adds `sessionPresent`).
 */
export type SupervisedEvents = Omit<ConnectionEvents, 'message'> & { message: unknown }

/**
 * What a client kind supplies to the supervisor: how to start, drop, probe and end one link. The supervisor decides
 * when; the driver only knows how. A driver reports back through the supervisor's `up`, `closed`, `failed`, `down`,
 * `terminal` and `report`.
 */
export interface LinkDriver {
  /**
   * Starts one link for this attempt (a socket, an MQTT CONNECT, a request). `request` already carries the auth
   * hook's query and headers; `extra` is what the hook returned (MQTT reads credentials from it). `current()` turns
   * false once the attempt is superseded: callbacks of an older link must check it and do nothing.
   */
  begin(request: TransportRequest, extra: AuthResult, current: () => boolean): void
  /** Lets go of the current link, if there is one. Its callbacks are already stale. */
  drop(): void
  /**
   * Sends a probe on the open link (a heartbeat ping, a PINGREQ) and returns a function that tells whether anything
   * arrived since. Undefined when this link cannot be probed.
   */
  probe(): (() => boolean) | undefined
  /** Closes the open link on purpose; the driver calls `ended()` once it is closed. */
  end(code: number, reason: string): void
  /** The session is over: reject work that waits for a link with `closed` (a CLOSED error). */
  stop(closed: LongLinkError): void
  /** The app went to the background while the link is open: stop timers a suspended app would trip. */
  hide?(): void
}

/** The supervisor as its driver and its client's public API see it. */
export interface Supervisor<E extends SupervisedEvents> {
  readonly state: ConnectionState
  /** Links opened after the first one of a session, over the client's life. */
  readonly reconnects: number
  on<K extends keyof E>(event: K, handler: (payload: E[K]) => void): () => void
  off<K extends keyof E>(event: K, handler?: (payload: E[K]) => void): void
  emit<K extends keyof E>(event: K, payload: E[K]): void
  /** Starts a session (unless one runs) and resolves once a link is open; rejects when the session stops. */
  open(): Promise<void>
  /** Ends the session on purpose; resolves once the link is closed. */
  close(code: number, message: string): Promise<void>
  /** The driver's link is open: `extra` joins `reconnected` in the `open` event. */
  up(extra: Omit<E['open'], 'reconnected'>): void
  /** The link closed without being asked to (or after `end`): `reason` is what the driver knows of why. */
  closed(code: number, message: string, reason?: CloseReason): void
  /**
   * The server accepted this attempt's link (a socket opened, a response arrived) before it is open for the client
   * (an MQTT CONNACK still to come): a failure from here on cost the server work and climbs the backoff ladder in full.
   */
  reached(): void
  /** The link failed (a socket error): replaced, or the session stops at the socket limit. */
  failed(error: LongLinkError): void
  /**
   * The link or the attempt is gone for `reason`: tell the user (an open link's end is a `close` event with `message`
   * and `code`), then retry, wait or stop. A link found dead while it was being verified is replaced at once. The next
   * attempt waits `wait` ms when it is given (a server's Retry-After), else the backoff delay.
   */
  down(reason: CloseReason, error?: LongLinkError, message?: string, code?: number, wait?: number): void
  /**
   * Stops for good: pending work fails with `error`, which is reported, or, when `close` is given, the session ends
   * with that `close` event instead (a stop that is no failure, such as a server that said it has nothing more).
   */
  terminal(error: LongLinkError, reason: TransitionReason, close?: E['close']): void
  /** Emits `error` (and logs it). */
  report(error: LongLinkError): void
  /** Lets go of the current link and starts the next attempt now (the auth hook is asked again). */
  retry(reason: TransitionReason): void
  /** The intentional close has finished. */
  ended(): void
}

type Timer = ReturnType<typeof setTimeout> | undefined

const EVENTS = ['open', 'message', 'close', 'error', 'reconnecting', 'state', 'transport'] as const

/**
 * One lifecycle for every client kind: states and transitions (with reasons), the generation counter against stale
 * callbacks, attempts with their backoff, connect deadline and minimum uptime, open/close waiters, the auth hook
 * before each attempt, the network and app lifecycle rules, and error reporting. Clients (the core connection, the
 * MQTT client, later an SSE source or HTTP transports) are drivers: they start, drop, probe and end links.
 *
 * Lifecycle rules, written here once:
 * - network `none` drops the link and stops attempts (`offline`); its return connects at once with a fresh backoff;
 * - a switch between two live networks, or a show after a hide, verifies an open link: a probe must be answered
 *   within `verifyTimeout`, else the link is replaced at once;
 * - a hide stops attempts; a show without a hide before it changes nothing.
 *
 * Written as a closure: its internals stay private and minify to short names (the mini-program bundle is small).
 */
export function createSupervisor<E extends SupervisedEvents>(
  options: ResolvedOptions,
  adapter: Pick<Adapter, 'name' | 'lifecycle' | 'recoverable' | 'blocked'>,
  driver: LinkDriver,
): Supervisor<E> {
  const { auth, log } = options
  const policy = options.reconnect
  const { on, off, emit } = createEmitter<E>(EVENTS as unknown as (keyof E)[], handlerFailed)

  let state: ConnectionState = 'idle'
  /** Bumped for every attempt and every drop: callbacks of an older link compare unequal and are ignored. */
  let generation = 0
  let attempt = 0
  /**
   * The position on the backoff ladder: 1 after the first failure, then +1 per failure that cost the server work and
   * +`refusedWeight` per attempt the server never accepted (refused, unreachable), which costs it nothing, up to 3
   * (a bound of 4 × min); from there every failure climbs in full. So clients that wait out a server's restart keep
   * retrying at short intervals and are there when it is back, while an overloaded server, whose attempts time out,
   * and a server away for long still see their clients back off in full.
   */
  let climb = 0
  /** Whether the server accepted the current attempt's link. */
  let reachedServer = false
  let links = 0
  let reconnects = 0
  let networkDown = false
  let networkType: string | undefined
  let hidden = false
  let retryTimer: Timer
  /** The one deadline of the current link: opening while `connecting`, answering a probe while `open`. */
  let linkTimer: Timer
  /**
   * While a probe is out, whether it was answered: a link found dead before it is (by the probe's deadline or the
   * driver's own watchdog) is replaced at once.
   */
  let verifying: (() => boolean) | undefined
  let uptimeTimer: Timer
  let stopWatching: (() => void) | undefined
  /** The resolve and reject of every `open()` waiting for a link (pairs: they minify smaller than objects). */
  const openWaiters: [resolve: () => void, reject: (error: LongLinkError) => void][] = []
  const closeWaiters: (() => void)[] = []
  /** The request and headers of the current attempt, and of the last one a server refused (NOT_AUTHORIZED). */
  let attemptSignature = ''
  let refused: [signature: string, error: LongLinkError] | undefined
  /** The `close` event an intentional close ends with, while it runs. */
  let closing: E['close'] | undefined

  /** The one place the state changes: emits `state` {from, to, reason} before any event that goes with it. */
  function transition(to: ConnectionState, reason: TransitionReason): void {
    const from = state
    if (from === to) return
    state = to
    // Whatever failed on the way offline failed because of the network or the background, not of the transport.
    if (to === 'offline' && adapter.blocked) adapter.blocked()
    log('debug', `${from} -> ${to} (${reason})`)
    emit('state', { from, to, reason } as E['state'])
  }

  /** Starts one attempt, unless the network is down or the app is hidden. */
  function connect(reason: TransitionReason): void {
    clearTimeout(retryTimer)
    // Let go of the link first: one replaced on purpose (a planned SSE rotation) while hidden must not linger.
    const current = detach()
    if (networkDown || hidden) return transition('offline', hidden ? 'background' : 'network-lost')
    // Armed before the transition: a `state` handler that closes the connection clears it with the rest.
    linkTimer = setTimeout(
      () => current() && down('connect-timeout', fail('CONNECT_TIMEOUT', `not open after ${options.connectTimeout} ms`)),
      options.connectTimeout,
    )
    transition('connecting', reason)
    reachedServer = false
    Promise.resolve()
      .then(() => auth && auth({ attempt, reason }))
      .then(
        (extra) => {
          if (!current()) return
          const result = (extra || {}) as AuthResult
          const request = attemptRequest(options, result)
          // An HTTP transport's server refused these very credentials: only different ones are worth another attempt.
          const signature = JSON.stringify([request.url, request.header])
          if (refused && refused[0] === signature) return terminal(refused[1], 'error')
          refused = undefined
          attemptSignature = signature
          // Header values may be credentials: only their names are logged, in brackets.
          log('debug', `connect ${redactUrl(request.url)} via ${adapter.name} [${Object.keys(request.header || {})}]`)
          driver.begin(request, result, current)
        },
        (error) => {
          throw fail('AUTH_FAILED', `auth hook failed: ${messageOf(error)}`, error)
        },
      )
      // A failed hook, a bad header from it, or a platform that threw: this attempt failed, the next one may not.
      .catch((error) => current() && down('error', error instanceof LongLinkError ? error : fail('CONNECT_FAILED', messageOf(error), error)))
  }

  function up(extra: Omit<E['open'], 'reconnected'>): void {
    clearTimeout(linkTimer)
    const reconnected = links++ > 0
    if (reconnected) reconnects++
    // The attempt counter resets only after the link proved stable, so a flapping server still meets growing delays.
    if (policy) uptimeTimer = setTimeout(fresh, policy.minUptime)
    transition('open', reconnected ? 'reconnect' : 'connected')
    // A `state` handler may have closed it already.
    if (state !== 'open') return
    for (const waiter of openWaiters.splice(0)) waiter[0]()
    emit('open', { ...extra, reconnected } as E['open'])
  }

  function closed(code: number, message: string, reason: CloseReason = 'server'): void {
    if (state === 'closing') ended()
    else if (state === 'connecting') down('error', fail('CONNECT_FAILED', `closed before open (${code} ${message})`))
    // The platform kills the sockets of a hidden app: that is why a link lost in the background went.
    else down(hidden ? 'background' : reason, undefined, message, code)
  }

  function failed(error: LongLinkError): void {
    if (state === 'closing') return
    // Refused by the server (an HTTP transport sees the status): without an auth hook nothing will change.
    if (state === 'connecting' && error.code === 'NOT_AUTHORIZED') {
      if (!auth) return terminal(error, 'error')
      refused = [attemptSignature, error]
    }
    // The platform kills the links of a hidden app: that is why it went, and no error of the link's own.
    if (hidden) return down('background')
    // Refused a socket, the URL's domain or an unencrypted URL: retrying cannot help until one closes or the app's
    // setup changes. (An open link that reports it is replaced like any.)
    // Unless the adapter has another way to go (another transport: a request is not a socket, nor on the same domain list).
    if (state === 'connecting' && refusedForGood(error) && !(adapter.recoverable && adapter.recoverable())) {
      return terminal(error, error.code === 'SOCKET_LIMIT' ? 'socket-limit' : 'error')
    }
    down('error', state === 'connecting' && error.code === 'SOCKET_ERROR' ? fail('CONNECT_FAILED', error.message, error) : error, error.message)
  }

  function down(reason: CloseReason, error?: LongLinkError, message = reason as string, code = 1006, wait = 0): void {
    const wasOpen = state === 'open'
    const now = verifying && !verifying()
    detach()
    const blocked = hidden || networkDown
    // What follows: stop (reconnect off, or `maxRetries` failures in a row), wait offline (no attempts while the network
    // is down or the app hidden), or retry after the backoff delay.
    const stopError = !policy
      ? error || fail('CLOSED', `link lost (${reason}), reconnect off`)
      : !blocked && attempt >= policy.maxRetries
        ? fail('RETRIES_EXHAUSTED', `gave up after ${attempt} retries`, error)
        : undefined
    if (stopError) stop(stopError)
    transition(stopError ? 'closed' : blocked ? 'offline' : 'reconnecting', stopError && policy ? 'retries-exhausted' : reason)
    if (wasOpen) emit('close', { code, reason, intentional: false, message } as E['close'])
    if (error) report(error)
    if (stopError && stopError !== error) report(stopError)
    // Not when a handler of the events above closed the connection.
    if (state === 'reconnecting') {
      // Cheap: the server never accepted the link, nor did it time out, nor did our own auth hook (which usually asks
      // a server) fail; and only while the bound is short: a server away for longer climbs in full from 4 × min.
      const cheap = !wasOpen && !reachedServer && reason !== 'connect-timeout' && (!error || error.code !== 'AUTH_FAILED') && climb < 3
      climb = attempt++ ? climb + (cheap ? policy!.refusedWeight : 1) : 1
      const delay = now ? 0 : wait || backoffDelay(climb, policy!)
      log('info', `retry ${attempt} in ${delay} ms (${reason})`)
      retryTimer = setTimeout(() => connect('reconnect'), delay)
      emit('reconnecting', { attempt, delay, reason } as E['reconnecting'])
    }
  }

  /** Starts the backoff over: the link proved stable, or what blocked it has cleared. */
  function fresh(): void {
    attempt = climb = 0
  }

  /**
   * Lets go of the current link: its callbacks are ignored from now on, and its timers stop. Returns the check that no
   * other link was let go of since (an attempt holds it while it runs).
   */
  function detach(): () => boolean {
    const mine = ++generation
    verifying = undefined
    clearTimeout(linkTimer)
    clearTimeout(uptimeTimer)
    driver.drop()
    return () => mine === generation
  }

  /** Ends the session: no more attempts or lifecycle listeners; waiting work fails with `error`. */
  function stop(error: LongLinkError): void {
    clearTimeout(retryTimer)
    stopWatching && stopWatching()
    stopWatching = undefined
    driver.stop(error.code === 'CLOSED' ? error : fail('CLOSED', error.message, error))
    for (const waiter of openWaiters.splice(0)) waiter[1](error)
  }

  function terminal(error: LongLinkError, reason: TransitionReason, close?: E['close']): void {
    detach()
    stop(error)
    transition('closed', reason)
    close ? emit('close', close) : report(error)
  }

  function ended(): void {
    const event = closing
    if (!event) return
    closing = undefined
    detach()
    transition('closed', 'user')
    emit('close', event)
    for (const resolve of closeWaiters.splice(0)) resolve()
  }

  // ---- network and app lifecycle ------------------------------------------------------------------------

  /** Something blocks the link (no network, app hidden): drop what is under way and wait for `resume`. */
  function pause(reason: 'network-lost' | 'background'): void {
    // Told first: the attempt dropped now failed because of this, not because of its transport.
    if (adapter.blocked) adapter.blocked()
    if (state === 'open' || state === 'connecting') down(reason)
    else if (state === 'reconnecting') {
      clearTimeout(retryTimer)
      transition('offline', reason)
    }
  }

  /** Reconnects at once with a fresh backoff, when what blocked the link has cleared. */
  function resume(reason: TransitionReason): void {
    if ((state === 'offline' || state === 'reconnecting') && !networkDown && !hidden) {
      fresh()
      connect(reason)
    }
  }

  /** An open link may have died unseen (a network switch, a suspended app): it must answer a probe in time. */
  function verify(): void {
    // While hidden nothing is verified (a show does it): the platform may suspend the app before any answer comes.
    const heard = state === 'open' && !hidden && driver.probe()
    if (!heard) return
    clearTimeout(linkTimer)
    verifying = heard
    linkTimer = setTimeout(() => heard() || down('heartbeat-timeout', undefined, 'no answer to a check'), options.verifyTimeout)
  }

  /**
   * Subscribes to whatever of `onNetworkStatusChange`, `onAppShow` and `onAppHide` the host has, asks
   * `getNetworkType` once, and returns the function that removes every listener it added.
   */
  function watch(host: LifecycleHost | undefined): (() => void) | undefined {
    if (!host) return
    // Hosts without off* cannot drop a listener: the flag turns ours into no-ops after the watch ends.
    let active = true
    const onNetwork = (res: { isConnected?: boolean; networkType?: string } | undefined) => {
      if (!active || !res) return
      const previous = networkType
      const type = (networkType = String(res.networkType ?? (res.isConnected === false ? 'none' : 'unknown')))
      if (res.isConnected === false || type === 'none') {
        if (!networkDown) {
          networkDown = true
          pause('network-lost')
        }
      } else if (networkDown) {
        networkDown = false
        resume('network-restored')
      } else if (previous && previous !== type) {
        // A switch between two live networks (wifi -> 4g) usually kills the TCP link without telling anyone.
        verify()
      }
    }
    const onShow = () => active && show()
    const onHide = () => active && hide()
    const call = (fn: ((cb: never) => void) | undefined, cb: unknown) => {
      try {
        if (typeof fn === 'function') fn.call(host, cb as never)
      } catch {
        // A host may throw when the API exists but is not available here (for example in a plugin context), and the
        // network type is a hint, never a reason to fail.
      }
    }
    call(host.onNetworkStatusChange, onNetwork)
    call(host.onAppShow, onShow)
    call(host.onAppHide, onHide)
    // Its answer has the shape of a network change without `isConnected` (its `networkType` says `none` when offline).
    call(host.getNetworkType, { success: onNetwork, fail() {} })
    return () => {
      active = false
      call(host.offNetworkStatusChange, onNetwork)
      call(host.offAppShow, onShow)
      call(host.offAppHide, onHide)
    }
  }

  function hide(): void {
    if (hidden) return
    hidden = true
    // An open link is kept: messages still arrive until the platform suspends the app (about 5 s on WeChat).
    if (state === 'open') driver.hide && driver.hide()
    else pause('background')
  }

  function show(): void {
    if (!hidden) return
    hidden = false
    if (state === 'open') verify()
    else resume('foreground')
  }

  function open(): Promise<void> {
    if (state === 'open') return Promise.resolve()
    if (state === 'closing') return new Promise<void>((resolve) => closeWaiters.push(resolve)).then(open)
    const ready = new Promise<void>((resolve, reject) => openWaiters.push([resolve, reject]))
    if (state === 'idle' || state === 'closed') {
      // A new session: whether the network was down or the app hidden is stale (nothing listened since); the watch
      // asks the network type again.
      attempt = links = 0
      networkDown = hidden = false
      refused = undefined
      stopWatching = watch(adapter.lifecycle)
      connect('open')
    }
    return ready
  }

  // ---- errors ---------------------------------------------------------------------------------------------

  function handlerFailed(error: unknown, event: keyof E): void {
    const wrapped = fail('HANDLER_ERROR', `"${event as string}" handler threw: ${messageOf(error)}`, error)
    // Reporting a failing `error` handler through `error` again could loop forever.
    if (event === 'error') log('error', wrapped.message)
    else report(wrapped)
  }

  function report(error: LongLinkError): void {
    log('warn', `${error.code}: ${error.message}`)
    emit('error', error as E['error'])
  }

  return {
    get state() {
      return state
    },
    get reconnects() {
      return reconnects
    },
    on,
    off,
    emit,
    open,
    close(code, message) {
      if (state === 'closed') return Promise.resolve()
      const done = new Promise<void>((resolve) => closeWaiters.push(resolve))
      if (state === 'closing') return done
      closing = { code, reason: 'user', intentional: true, message } as E['close']
      // An open link closes first (MQTT says DISCONNECT), then the session stops; anything else ends at once.
      const linked = state === 'open'
      if (linked) {
        // The link's deadline (a check under way) no longer applies: the close is what happens to it now.
        clearTimeout(linkTimer)
        transition('closing', 'user')
        driver.end(code, message)
      }
      stop(fail('CLOSED', 'closed by close()'))
      if (!linked) ended()
      return done
    },
    up,
    reached: () => void (reachedServer = true),
    closed,
    failed,
    down,
    terminal,
    report,
    retry(reason) {
      // An open link replaced on purpose (a planned rotation) was no failure: it does not count as one.
      if (state !== 'open') climb = attempt++ ? climb + 1 : 1
      connect(reason)
    },
    ended,
  }
}
