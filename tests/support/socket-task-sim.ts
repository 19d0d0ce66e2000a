/**
 * Faithful simulators of the WeChat (`wx`) and uni-app (`uni`, mp-weixin build) socket and
 * lifecycle APIs, backed by real `ws` sockets, so the LongLink client can be tested against the
 * awkward semantics of the real hosts instead of an idealised mock.
 *
 * Sources for the reproduced behaviour (all looked up, quoted in the comments where used):
 * - WeChat docs `wx.connectSocket` / `SocketTask` (developers.weixin.qq.com/miniprogram/dev/api/
 *   network/websocket/...): options, "最多可以同时存在 5 个 WebSocket 连接", SocketTask methods.
 * - WeChat docs "异步 API 返回 Promise" (framework/app-service/api.html): async APIs return a Promise
 *   when none of success/fail/complete is passed, except `connectSocket` (Promise style "不支持").
 * - WeChat docs network usage: "小程序进入后台运行后，如果 5s 内网络请求没有结束，会回调错误信息
 *   fail interrupted；在回到前台之前，网络请求接口调用都会无法调用".
 * - A mini-program networking guide (lrmb.net/wx/s_13580.html): "对于 websocket 接口, 回调仅代表接口
 *   调用结果, 应当监听其具体事件来获取真实的网络连接/请求状态" => `success` is NOT `open`.
 * - WeChat Android client (decompiled JsApiCreateSocketTask / JsApiOperateSocketTask /
 *   AppBrandNetworkWebSocket, public mirrors) and the WeChat DevTools simulator source: errMsg
 *   texts for the socket limit, send-before-open, bad close codes, background interruption.
 * - uni-app docs `uni.connectSocket`: "如果希望返回一个 socketTask 对象，需要至少传入 success / fail /
 *   complete 参数中的一个 ... 如果没有传入 ... 则会返回封装后的 Promise 对象", and the installed
 *   `@dcloudio/uni-mp-weixin` `promisify()` which resolves with the success result / rejects
 *   with the fail result (Vue 3 style, not the Vue 2 `[err, res]` tuple).
 *
 * Everything is per simulator instance; the module holds no mutable state.
 */
import { WebSocket, type ClientOptions } from 'ws'
import type { IncomingMessage } from 'node:http'
import { hasCallback, isArrayBuffer, safeCall, typeName } from './sim-callbacks'

/** Numeric SocketTask ready states (same values as the browser WebSocket). */
export const SOCKET_STATE = { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 } as const

/** A SocketTask ready state value. */
export type SocketReadyState = (typeof SOCKET_STATE)[keyof typeof SOCKET_STATE]

/**
 * The errMsg strings the simulators produce. Exported so tests assert against one source of truth.
 *
 * Provenance (what is confirmed and what is a reasoned choice):
 * - `exceedMaxTaskCount`: the WeChat error-code table lists 600007 "network exceed max task
 *   count" and the DevTools simulator emits `errMsg: "exceed max task count"` for the 6th socket
 *   (on the task's onError, after a `connectSocket:ok` success). The Android client's legacy path
 *   reports "fail:max connected" instead. The `connectSocket:fail ` prefix on the `fail` channel
 *   follows the WeChat `${api}:fail ${reason}` convention and is NOT confirmed for sockets.
 * - `sendNotConnected`: "sendSocketMessage:fail WebSocket is not connected" is the text users
 *   report from real devices (developers.weixin.qq.com community threads). The DevTools says
 *   "webSocket is not connected" and the Android native layer "don't send before socket
 *   connected"; clients should therefore only rely on the `sendSocketMessage:fail` prefix.
 * - `closeInvalidCode`: the reason text is verbatim from the Android client
 *   ("fail:The code must be either 1000, or between 3000 and 4999"); the `closeSocket:fail `
 *   prefix is inferred from the `closeSocket:fail wcwss taskID not exist` reports.
 * - `closeTaskNotExist`: verbatim from community reports ("closeSocket:fail wcwss taskID not exist").
 * - `suspended`: verbatim from a report of connecting right after returning from background
 *   (cnblogs NorthHarbor/p/12718813).
 * - `networkDown`: DevTools simulator ("connectSocket:fail network is down").
 * - `domainNotAllowed`: "url not in domain list" is the text WeChat's clients use for a URL outside the admin
 *   console's server domains (Android client JsApiCreateRequestTask/JsApiCreateUploadTask, public mirrors; developers
 *   match it in `errMsg` of every network API); the `connectSocket:fail ` prefix follows the convention.
 * - `insecureUrl`: a device accepts only `wss://` for sockets; a URL it refuses is reported as
 *   `connectSocket:fail invalid url "<url>"` (the text public re-implementations of the base library use for a
 *   non-wss protocol). NOT confirmed on a device.
 * - `sslHandshake`: "ssl hand shake error" is the Android client's text for a failed TLS handshake (AppBrandNetwork,
 *   public mirrors; users report `request:fail ssl hand shake error`). Put on the task's onError here.
 * - `sendInvalidData`: follows the WeChat parameter-check format
 *   `${api}:fail parameter error: parameter.${name} should be ${Expected} instead of ${Actual};`;
 *   NOT confirmed for SocketTask.send (the Android native layer answers "fail:unknown data").
 */
export const WX_ERR_MSG = {
  connectOk: 'connectSocket:ok',
  exceedMaxTaskCount: 'connectSocket:fail exceed max task count',
  /** Bare text DevTools puts on the task's onError when the limit is hit (refusalStyle 'error'). */
  exceedMaxTaskCountEvent: 'exceed max task count',
  suspended:
    'connectSocket:fail:jsapi has no permission,event=createSocketTask,runningState=suspend,permissionMsg=permission ok,detail=network api interrupted in suspend state',
  suspendedEvent: 'network api interrupted in suspend state',
  networkDown: 'connectSocket:fail network is down',
  networkDownEvent: 'network is down',
  urlInvalid: 'url not well format',
  domainNotAllowed: 'connectSocket:fail url not in domain list',
  domainNotAllowedEvent: 'url not in domain list',
  insecureUrl: (url: string): string => `connectSocket:fail invalid url "${url}"`,
  sslHandshake: 'ssl hand shake error',
  connectTimeout: 'connect response time out',
  sendOk: 'sendSocketMessage:ok',
  sendNotConnected: 'sendSocketMessage:fail WebSocket is not connected',
  sendInvalidData: (actualType: string): string =>
    `sendSocketMessage:fail parameter error: parameter.data should be String or ArrayBuffer instead of ${actualType};`,
  closeOk: 'closeSocket:ok',
  closeInvalidCode: 'closeSocket:fail The code must be either 1000, or between 3000 and 4999',
  closeTaskNotExist: 'closeSocket:fail wcwss taskID not exist',
  getNetworkTypeOk: 'getNetworkType:ok',
  /** onClose reason WeChat reports for sockets it kills in background (Android client source). */
  backgroundCloseReason: 'interrupted',
} as const

/**
 * Reason text WeChat fills in when the peer gave none (DevTools simulator table; a community page
 * also reports "normal closure" / "abnormal closure" from real devices).
 */
const CLOSE_REASON_BY_CODE: Readonly<Record<number, string>> = {
  1000: 'normal closure',
  1001: 'going away',
  1002: 'protocol error',
  1003: 'unsupported data',
  1004: 'reserved',
  1005: 'no status rcvd',
  1006: 'abnormal closure',
  1007: 'invalid frame payload data',
  1008: 'policy violation',
  1009: 'message too big',
  1010: 'mandatory ext.',
  1011: 'internal server error',
  1015: 'tls handshake',
}

/** Network types WeChat reports (`networkType` legal values) plus uni's `ethernet`. */
export type NetworkType = 'wifi' | '2g' | '3g' | '4g' | '5g' | 'unknown' | 'none' | 'ethernet'

/** Result object passed to success/fail/complete callbacks. */
export interface CallbackResult {
  errMsg: string
  [key: string]: unknown
}

/** The usual success/fail/complete triple of a mini-program async API. */
export interface AsyncCallbacks<R extends CallbackResult = CallbackResult> {
  success?: (res: R) => void
  fail?: (res: CallbackResult) => void
  complete?: (res: CallbackResult) => void
}

/** Options of `connectSocket`, as documented by WeChat (method/forceCellularNetwork ignored). */
export interface ConnectSocketOptions extends AsyncCallbacks<ConnectSocketResult> {
  url: string
  header?: Record<string, string>
  protocols?: string[]
  /** Handshake timeout in ms; WeChat defaults to 60 000 (Android client and DevTools source). */
  timeout?: number
  tcpNoDelay?: boolean
  perMessageDeflate?: boolean
  [key: string]: unknown
}

/** Success result of `connectSocket`: only means "task created". */
export interface ConnectSocketResult extends CallbackResult {
  socketTaskId: number
}

/** Options of `SocketTask.send`. */
export interface SendOptions extends AsyncCallbacks {
  data: unknown
}

/** Options of `SocketTask.close`. */
export interface CloseOptions extends AsyncCallbacks {
  code?: number
  reason?: string
}

/** `onOpen` payload: response headers plus a (synthetic) timing profile. */
export interface SocketOpenResult {
  header: Record<string, string>
  profile: SocketProfile
}

/** Timing profile, field names as in miniprogram-api-typings `SocketProfile`. */
export interface SocketProfile {
  fetchStart: number
  domainLookUpStart: number
  domainLookUpEnd: number
  connectStart: number
  connectEnd: number
  rtt: number
  handshakeCost: number
  cost: number
}

/** `onClose` payload. */
export interface SocketCloseResult {
  code: number
  reason: string
}

/** `onError` payload. */
export interface SocketErrorResult {
  errMsg: string
}

/** `onMessage` payload: text frames are strings, binary frames fresh ArrayBuffers. */
export interface SocketMessageResult {
  data: string | ArrayBuffer
}

/** `onNetworkStatusChange` payload. */
export interface NetworkStatus {
  isConnected: boolean
  networkType: NetworkType
}

/** `getNetworkType` success result. */
export interface NetworkTypeResult extends CallbackResult {
  networkType: NetworkType
  signalStrength: number
}

/** Why a `connectSocket` call was refused before any socket existed. */
export type RefusalKind = 'limit' | 'suspended' | 'offline' | 'domain' | 'insecure'

/**
 * How a refused `connectSocket` is reported.
 * - `'fail'` (default, the contract LongLink codes against): `fail` then `complete` with
 *   `connectSocket:fail ...`; the returned task is inert and never fires events.
 * - `'error'` (what the DevTools simulator does): `success`/`complete` with `connectSocket:ok`,
 *   then the task's `onError` with the bare reason, no `onClose`.
 */
export type RefusalStyle = 'fail' | 'error'

/** Options shared by both simulators. */
export interface SimulatorOptions {
  /** Concurrent not-yet-closed sockets allowed (WeChat: 5 since base library 1.7.0). */
  maxSockets?: number
  /** Initial network type (default `'wifi'`). */
  networkType?: NetworkType
  /** Kill sockets and refuse new ones after `backgroundKillMs` in background (default false). */
  killOnHide?: boolean
  /** Grace period in background before WeChat suspends networking (default 5000 ms). */
  backgroundKillMs?: number
  /** onClose code used for background kills (default 1000, with reason "interrupted"). */
  backgroundCloseCode?: number
  /** When true, `setNetwork('none')` kills live sockets and refuses new ones (default false). */
  killOnOffline?: boolean
  /** How refused connects are reported, see {@link RefusalStyle} (default `'fail'`). */
  refusalStyle?: RefusalStyle
  /** Default handshake timeout when the caller passes none (default 60 000 ms, as WeChat). */
  defaultTimeoutMs?: number
  /**
   * How long a client-initiated close waits for the peer's close frame before the TCP socket is
   * destroyed (default 30 000 ms, the `ws` default; WeChat's value is not documented).
   */
  closeTimeoutMs?: number
  /**
   * The socket server domains of the mini-program's admin console (host names, `host:port` allowed). A URL whose host
   * is not listed is refused with "url not in domain list". Default: every domain (DevTools with the check turned off).
   */
  allowedDomains?: readonly string[] | undefined
  /** As on a device: only `wss://` is accepted, `ws://` is refused as an invalid URL (default false, as DevTools). */
  requireWss?: boolean
}

/** Per-event listener counts, so tests can assert a client cleaned up after itself. */
export interface ListenerCounts {
  network: number
  appShow: number
  appHide: number
}

/** Host surface shared by the wx and uni simulators (everything except the Promise overloads). */
export interface SimHostBase {
  /** Which API family this host imitates. */
  readonly platform: 'wx' | 'uni'
  /** Every task ever created by `connectSocket`, including refused and unreachable ones. */
  readonly tasks: readonly SimSocketTask[]
  /** Current network type as set by {@link SimHostBase.setNetwork}. */
  readonly networkType: NetworkType
  /** True between `hide()` and `show()`. */
  readonly hidden: boolean
  /** True once the background grace period elapsed (only with `killOnHide`). */
  readonly suspended: boolean
  /** Adds a network listener; receives `{ isConnected, networkType }`. */
  onNetworkStatusChange(listener: (res: NetworkStatus) => void): void
  /** Removes one listener, or all of them when called without argument (as documented). */
  offNetworkStatusChange(listener?: (res: NetworkStatus) => void): void
  /** Adds a foreground listener (payload like App.onShow's: path, scene, query...). */
  onAppShow(listener: (res: Record<string, unknown>) => void): void
  /** Adds a background listener (payload like App.onHide's: `{ reason }`). */
  onAppHide(listener: (res: Record<string, unknown>) => void): void
  /** Removes one foreground listener, or all without argument. */
  offAppShow(listener?: (res: Record<string, unknown>) => void): void
  /** Removes one background listener, or all without argument. */
  offAppHide(listener?: (res: Record<string, unknown>) => void): void
  /** Test control: switch network and notify `onNetworkStatusChange` listeners synchronously. */
  setNetwork(type: NetworkType): void
  /** Test control: move the app to background and notify `onAppHide` listeners. */
  hide(payload?: Record<string, unknown>): void
  /** Test control: bring the app to foreground (cancels a pending kill) and notify `onAppShow`. */
  show(payload?: Record<string, unknown>): void
  /** Listener counts per host event. */
  listenerCount(): ListenerCounts
  /** Number of tasks currently occupying a socket slot (created and not yet closed). */
  openTasks(): number
  /** Tear everything down silently: terminate sockets, drop listeners, cancel timers. */
  dispose(): void
}

/** The `wx` simulator host. */
export interface WxSimHost extends SimHostBase {
  readonly platform: 'wx'
  /** Returns a SocketTask synchronously; `success` only means "task created". */
  connectSocket(options: ConnectSocketOptions): SimSocketTask
  /** Callback style: success/complete get `{ errMsg, networkType, signalStrength }`. */
  getNetworkType(options: AsyncCallbacks<NetworkTypeResult>): void
  /** Promise style, used when no success/fail/complete is passed. */
  getNetworkType(options?: Record<string, never>): Promise<NetworkTypeResult>
}

/** The `uni` (mp-weixin build) simulator host. */
export interface UniSimHost extends SimHostBase {
  readonly platform: 'uni'
  /**
   * With at least one of success/fail/complete: returns the SocketTask. Without: returns a
   * Promise of the success result while the socket is still created and opened, unreachable.
   */
  connectSocket(
    options: ConnectSocketOptions &
      (
        | { success: NonNullable<ConnectSocketOptions['success']> }
        | { fail: NonNullable<ConnectSocketOptions['fail']> }
        | { complete: NonNullable<ConnectSocketOptions['complete']> }
      ),
  ): SimSocketTask
  connectSocket(options: ConnectSocketOptions): SimSocketTask | Promise<ConnectSocketResult>
  /** Callback style: success/complete get `{ errMsg, networkType, signalStrength }`. */
  getNetworkType(options: AsyncCallbacks<NetworkTypeResult>): void
  /** Promise style, used when no success/fail/complete is passed. */
  getNetworkType(options?: Record<string, never>): Promise<NetworkTypeResult>
}

type TaskEvent = 'open' | 'close' | 'error' | 'message'

/** What a task needs from its host; kept narrow so the task cannot touch other host state. */
interface TaskHostHooks {
  /** Runs `fn(arg)` on a later macrotask unless the host was disposed. */
  defer<A>(fn: (arg: A) => void, arg?: A): void
  /** Called exactly once when the task stops occupying a socket slot. */
  release(task: SimSocketTask): void
  readonly defaultTimeoutMs: number
  readonly closeTimeoutMs: number
}

/** Calls a user callback without letting its exception escape into the simulator. */
/** Delivers one API result: success or fail, then complete. */
function runSettle({ opts, ok, errMsg }: { opts: AsyncCallbacks; ok: boolean; errMsg: string }): void {
  const res: CallbackResult = { errMsg }
  if (ok) safeCall('success', opts.success, res)
  else safeCall('fail', opts.fail, res)
  safeCall('complete', opts.complete, res)
}

/** `sendSocketMessage:ok`, shared: results are read, never written, by callers. */
const SEND_OK: CallbackResult = Object.freeze({ errMsg: WX_ERR_MSG.sendOk })

function runSendOk(opts: AsyncCallbacks): void {
  safeCall('success', opts.success, SEND_OK)
  safeCall('complete', opts.complete, SEND_OK)
}

/** Labels for script errors, computed once rather than per message. */
const TASK_EVENT_LABEL: Record<TaskEvent, string> = {
  open: 'socketTask.onOpen',
  close: 'socketTask.onClose',
  error: 'socketTask.onError',
  message: 'socketTask.onMessage',
}

function flattenHeaders(headers: IncomingMessage['headers'] | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  if (!headers) return out
  for (const [key, value] of Object.entries(headers)) {
    if (value === undefined) continue
    out[key] = Array.isArray(value) ? value.join(',') : value
  }
  return out
}

/**
 * A WeChat-like SocketTask backed by a real `ws` client socket.
 *
 * Not constructed directly: use `host.connectSocket()`. Like WeChat, the socket starts connecting
 * as soon as the task exists, so listeners must be registered synchronously after creation.
 */
export class SimSocketTask {
  /** State constant (also on the instance, as uni-h5 and Taro expose it). */
  readonly CONNECTING = SOCKET_STATE.CONNECTING
  /** State constant. */
  readonly OPEN = SOCKET_STATE.OPEN
  /** State constant. */
  readonly CLOSING = SOCKET_STATE.CLOSING
  /** State constant. */
  readonly CLOSED = SOCKET_STATE.CLOSED
  /** Host-wide increasing id (WeChat's `socketTaskId`). */
  readonly id: number
  /** The URL passed to `connectSocket`. */
  readonly url: string
  /** A copy of the connect options without the callbacks, for inspection. */
  readonly options: Readonly<Omit<ConnectSocketOptions, 'success' | 'fail' | 'complete'>>
  /** Set when the host refused to create a real socket (limit, suspended, offline). */
  readonly refusedBecause: RefusalKind | undefined

  private state: SocketReadyState = SOCKET_STATE.CONNECTING
  private ws: WebSocket | undefined
  private readonly listeners: Record<TaskEvent, Array<(res: never) => void>> = {
    open: [],
    close: [],
    error: [],
    message: [],
  }
  private responseHeaders: Record<string, string> = {}
  private requestedClose: SocketCloseResult | undefined
  private forcedClose: SocketCloseResult | undefined
  private errorReported = false
  private released = false
  private readonly startedAt = Date.now()

  /** @internal Created by the simulator host only. */
  constructor(
    private readonly hooks: TaskHostHooks,
    id: number,
    options: ConnectSocketOptions,
    refusedBecause?: RefusalKind,
  ) {
    this.id = id
    this.url = options.url
    const { success: _s, fail: _f, complete: _c, ...rest } = options
    this.options = Object.freeze({ ...rest })
    this.refusedBecause = refusedBecause
    if (refusedBecause) this.state = SOCKET_STATE.CLOSED
  }

  /** Current numeric ready state (0..3). Not declared by WeChat's typings; provided for tests. */
  get readyState(): SocketReadyState {
    // A close handshake started by the server is only visible on the ws object until 'close'.
    if (this.state === SOCKET_STATE.OPEN && this.ws && this.ws.readyState === WebSocket.CLOSING) return SOCKET_STATE.CLOSING
    return this.state
  }

  /** Registers an open listener; receives `{ header, profile }`. */
  onOpen(listener: (res: SocketOpenResult) => void): void {
    this.addListener('open', listener)
  }

  /** Registers a close listener; receives `{ code, reason }`. */
  onClose(listener: (res: SocketCloseResult) => void): void {
    this.addListener('close', listener)
  }

  /** Registers an error listener; receives `{ errMsg }`. */
  onError(listener: (res: SocketErrorResult) => void): void {
    this.addListener('error', listener)
  }

  /** Registers a message listener; receives `{ data }` (string or fresh ArrayBuffer). */
  onMessage(listener: (res: SocketMessageResult) => void): void {
    this.addListener('message', listener)
  }

  /** Number of listeners per task event, for leak assertions. */
  listenerCount(): Record<TaskEvent, number> {
    return {
      open: this.listeners.open.length,
      close: this.listeners.close.length,
      error: this.listeners.error.length,
      message: this.listeners.message.length,
    }
  }

  /**
   * Sends a string (text frame) or an ArrayBuffer (binary frame). Anything else, including
   * typed-array views such as Uint8Array, fails: WeChat only documents `string/ArrayBuffer`.
   * `success` means "handed to the native layer", not "delivered".
   */
  send(options: SendOptions): void {
    const opts: SendOptions = options ?? ({} as SendOptions)
    // No closures on this path: a send is the hottest call a client makes.
    if (this.refusedBecause || this.readyState !== SOCKET_STATE.OPEN || !this.ws) {
      this.settle(opts, false, WX_ERR_MSG.sendNotConnected)
      return
    }
    const data = opts.data
    let payload: string | Buffer
    if (typeof data === 'string') {
      payload = data
    } else if (isArrayBuffer(data)) {
      // Copy so later mutation of the caller's buffer cannot change what was "sent".
      payload = Buffer.from(new Uint8Array(data).slice())
    } else {
      this.settle(opts, false, WX_ERR_MSG.sendInvalidData(typeName(data)))
      return
    }
    try {
      // ws sends strings as text and Buffers as binary frames by itself; no options object per message.
      this.ws.send(payload)
    } catch (err) {
      this.settle(opts, false, `sendSocketMessage:fail ${(err as Error).message}`)
      return
    }
    // The commonest result needs no record: the options object itself is queued with a shared result.
    this.hooks.defer(runSendOk, opts)
  }

  /**
   * Closes the socket. Codes other than 1000 or 3000..4999 fail and leave the socket open (as the
   * WeChat client does). Closing a task that is already closed or was never created fails with
   * "taskID not exist". Closing while CONNECTING aborts the handshake and reports `onClose` with
   * the requested code (WeChat behaviour here is not documented; this is a reasoned choice).
   * On a silently dead link the task stays CLOSING (and keeps its slot) until the peer answers
   * or `closeTimeoutMs` elapses, which is how reconnect loops run into the socket limit.
   */
  close(options?: CloseOptions): void {
    const opts: CloseOptions = options ?? {}
    if (this.refusedBecause || this.state === SOCKET_STATE.CLOSED || !this.ws) {
      this.settle(opts, false, WX_ERR_MSG.closeTaskNotExist)
      return
    }
    const code = opts.code ?? 1000
    if (!(code === 1000 || (code >= 3000 && code <= 4999))) {
      this.settle(opts, false, WX_ERR_MSG.closeInvalidCode)
      return
    }
    const reason = typeof opts.reason === 'string' ? opts.reason : ''
    if (this.state === SOCKET_STATE.CLOSING) {
      this.settle(opts, true, WX_ERR_MSG.closeOk)
      return
    }
    if (this.state === SOCKET_STATE.CONNECTING) {
      this.requestedClose = { code, reason }
      this.state = SOCKET_STATE.CLOSING
      // ws aborts a pending handshake on terminate(); its synthetic "closed before established"
      // error is suppressed because the application asked for this.
      this.ws.terminate()
      this.settle(opts, true, WX_ERR_MSG.closeOk)
      return
    }
    try {
      this.ws.close(code, reason)
    } catch (err) {
      // e.g. a reason longer than 123 UTF-8 bytes; the socket stays open, like a browser.
      this.settle(opts, false, `closeSocket:fail ${(err as Error).message}`)
      return
    }
    this.state = SOCKET_STATE.CLOSING
    this.settle(opts, true, WX_ERR_MSG.closeOk)
  }

  /** @internal Opens the real socket; called by the host right after construction. */
  _start(): void {
    const options = this.options
    const headers: Record<string, string> = {}
    for (const [key, value] of Object.entries(options.header ?? {})) {
      // WeChat: "Header 中不能设置 Referer"; the host drops it instead of sending it.
      if (key.toLowerCase() === 'referer') continue
      headers[key] = String(value)
    }
    const protocols = Array.isArray(options.protocols) && options.protocols.length > 0 ? options.protocols : undefined
    const timeout = typeof options.timeout === 'number' && options.timeout > 0 ? options.timeout : this.hooks.defaultTimeoutMs
    let ws: WebSocket
    try {
      // `closeTimeout` is a ws 8 option that @types/ws does not declare yet.
      const wsOptions: ClientOptions & { closeTimeout?: number } = {
        headers,
        handshakeTimeout: timeout,
        // ws enables permessage-deflate by default; WeChat defaults it to false.
        perMessageDeflate: options.perMessageDeflate === true,
        closeTimeout: this.hooks.closeTimeoutMs,
      }
      ws = new WebSocket(this.url, protocols, wsOptions)
    } catch {
      // Android client: an unparsable URL is reported on the task as "url not well format".
      this.state = SOCKET_STATE.CLOSED
      this.release()
      this.hooks.defer(() => this.emit('error', { errMsg: WX_ERR_MSG.urlInvalid }))
      return
    }
    this.ws = ws
    ws.on('upgrade', (res: IncomingMessage) => {
      this.responseHeaders = flattenHeaders(res.headers)
      res.socket.setNoDelay(options.tcpNoDelay === true)
    })
    ws.on('open', () => {
      if (this.state !== SOCKET_STATE.CONNECTING) return
      this.state = SOCKET_STATE.OPEN
      const cost = Date.now() - this.startedAt
      const profile: SocketProfile = {
        fetchStart: this.startedAt,
        domainLookUpStart: this.startedAt,
        domainLookUpEnd: this.startedAt,
        connectStart: this.startedAt,
        connectEnd: this.startedAt + cost,
        rtt: cost,
        handshakeCost: cost,
        cost,
      }
      this.emit('open', { header: this.responseHeaders, profile })
    })
    ws.on('message', (raw: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      if (this.state === SOCKET_STATE.CLOSED || this.forcedClose) return
      const buf = Array.isArray(raw) ? Buffer.concat(raw) : Buffer.isBuffer(raw) ? raw : Buffer.from(raw)
      if (!isBinary) {
        this.emit('message', { data: buf.toString('utf8') })
        return
      }
      // A fresh ArrayBuffer of exactly the frame bytes: Node Buffers are views into shared pools.
      const ab = new ArrayBuffer(buf.byteLength)
      new Uint8Array(ab).set(buf)
      this.emit('message', { data: ab })
    })
    ws.on('error', (err: Error) => {
      if (this.requestedClose || this.forcedClose) return
      this.errorReported = true
      const errMsg = /handshake has timed out/i.test(err.message)
        ? WX_ERR_MSG.connectTimeout
        : isTlsFailure(err)
          ? WX_ERR_MSG.sslHandshake
          : `exception ${err.message}`
      this.emit('error', { errMsg })
    })
    ws.on('close', (code: number, reasonBuf: Buffer) => {
      if (this.forcedClose) return
      this.state = SOCKET_STATE.CLOSED
      this.release()
      const result: SocketCloseResult = this.requestedClose ?? {
        code,
        reason: reasonBuf.toString('utf8') || CLOSE_REASON_BY_CODE[code] || '',
      }
      this.emit('close', result)
    })
  }

  /**
   * @internal Host-driven kill (background suspension, offline). Tears the TCP connection down
   * abruptly and reports the given events, bypassing whatever `ws` would have reported.
   */
  _kill(close: SocketCloseResult, errMsg?: string): void {
    if (this.state === SOCKET_STATE.CLOSED || !this.ws) return
    this.forcedClose = close
    this.state = SOCKET_STATE.CLOSED
    this.ws.terminate()
    this.release()
    if (errMsg !== undefined) this.emit('error', { errMsg })
    this.emit('close', close)
  }

  /** @internal Reports a refusal the DevTools way (onError with the bare reason). */
  _emitRefusalError(errMsg: string): void {
    this.emit('error', { errMsg })
  }

  /** @internal Silent teardown for `host.dispose()`: no events, listeners dropped. */
  _dispose(): void {
    this.forcedClose = this.forcedClose ?? { code: 1006, reason: 'disposed' }
    this.state = SOCKET_STATE.CLOSED
    const ws = this.ws
    if (ws) {
      ws.removeAllListeners()
      // terminate() may still emit 'error' (e.g. during a handshake); without a listener that
      // would be an unhandled 'error' event and crash the test process.
      ws.on('error', () => {})
      ws.terminate()
    }
    this.release()
    for (const key of Object.keys(this.listeners) as TaskEvent[]) this.listeners[key] = []
  }

  /** True once an `onError` was emitted for this task (inspection helper). */
  get hadError(): boolean {
    return this.errorReported
  }

  private release(): void {
    if (this.released) return
    this.released = true
    this.hooks.release(this)
  }

  private addListener(event: TaskEvent, listener: unknown): void {
    if (typeof listener !== 'function') return
    // Copy-on-write, so emitting needs no defensive copy per message.
    this.listeners[event] = [...this.listeners[event], listener as (res: never) => void]
  }

  private emit(event: 'open', res: SocketOpenResult): void
  private emit(event: 'close', res: SocketCloseResult): void
  private emit(event: 'error', res: SocketErrorResult): void
  private emit(event: 'message', res: SocketMessageResult): void
  private emit(event: TaskEvent, res: unknown): void {
    const name = TASK_EVENT_LABEL[event]
    // The array is replaced, never mutated, when listeners are added: iterating it as it is stays safe.
    for (const listener of this.listeners[event]) safeCall(name, listener as (r: unknown) => void, res)
  }

  private settle(opts: AsyncCallbacks, ok: boolean, errMsg: string): void {
    // WeChat invokes API callbacks asynchronously through its JS bridge, never re-entrantly.
    this.hooks.defer(runSettle, { opts, ok, errMsg })
  }
}

type HostListener = (res: never) => void

/** Shared implementation behind both simulators. */
class SimHost {
  readonly tasks: SimSocketTask[] = []
  private readonly live = new Set<SimSocketTask>()
  private readonly timers = new Set<ReturnType<typeof setTimeout>>()
  private readonly hostListeners = {
    network: [] as HostListener[],
    appShow: [] as HostListener[],
    appHide: [] as HostListener[],
  }
  private nextId = 1
  private disposed = false
  private network: NetworkType
  private isHidden = false
  private isSuspended = false
  private backgroundTimer: ReturnType<typeof setTimeout> | undefined
  private readonly opts: Required<Omit<SimulatorOptions, 'allowedDomains'>> & Pick<SimulatorOptions, 'allowedDomains'>
  private readonly hooks: TaskHostHooks

  constructor(
    readonly platform: 'wx' | 'uni',
    options: SimulatorOptions = {},
  ) {
    this.opts = {
      maxSockets: options.maxSockets ?? 5,
      networkType: options.networkType ?? 'wifi',
      killOnHide: options.killOnHide ?? false,
      backgroundKillMs: options.backgroundKillMs ?? 5000,
      backgroundCloseCode: options.backgroundCloseCode ?? 1000,
      killOnOffline: options.killOnOffline ?? false,
      refusalStyle: options.refusalStyle ?? 'fail',
      defaultTimeoutMs: options.defaultTimeoutMs ?? 60_000,
      closeTimeoutMs: options.closeTimeoutMs ?? 30_000,
      allowedDomains: options.allowedDomains,
      requireWss: options.requireWss ?? false,
    }
    this.network = this.opts.networkType
    this.hooks = {
      defer: (fn, arg) => this.defer(fn, arg),
      release: (task) => {
        this.live.delete(task)
      },
      defaultTimeoutMs: this.opts.defaultTimeoutMs,
      closeTimeoutMs: this.opts.closeTimeoutMs,
    }
  }

  get networkType(): NetworkType {
    return this.network
  }

  get hidden(): boolean {
    return this.isHidden
  }

  get suspended(): boolean {
    return this.isSuspended
  }

  connectSocket(options: ConnectSocketOptions): SimSocketTask | Promise<ConnectSocketResult> {
    if (this.platform === 'uni' && !hasCallback(options)) {
      // uni-mp-weixin promisify(): the real wx.connectSocket still runs (and takes a slot), but
      // the caller only gets a Promise of the success result; the task is unreachable.
      return new Promise<ConnectSocketResult>((resolve, reject) => {
        this.createTask({ ...options, success: resolve, fail: reject })
      })
    }
    return this.createTask(options)
  }

  getNetworkType(options?: AsyncCallbacks<NetworkTypeResult>): void | Promise<NetworkTypeResult> {
    const make = (): NetworkTypeResult => ({
      errMsg: WX_ERR_MSG.getNetworkTypeOk,
      networkType: this.network,
      signalStrength: 0,
    })
    if (!hasCallback(options)) {
      // Both hosts: WeChat promisifies async APIs without callbacks (base library >= 2.10.2,
      // getNetworkType is marked "以 Promise 风格 调用：支持"), uni does the same.
      return new Promise<NetworkTypeResult>((resolve) => this.defer(() => resolve(make())))
    }
    const opts = options as AsyncCallbacks<NetworkTypeResult>
    this.defer(() => {
      const res = make()
      safeCall('getNetworkType.success', opts.success, res)
      safeCall('getNetworkType.complete', opts.complete, res)
    })
  }

  onNetworkStatusChange(listener: (res: NetworkStatus) => void): void {
    this.addHostListener('network', listener)
  }

  offNetworkStatusChange(listener?: (res: NetworkStatus) => void): void {
    this.removeHostListener('network', listener)
  }

  onAppShow(listener: (res: Record<string, unknown>) => void): void {
    this.addHostListener('appShow', listener)
  }

  onAppHide(listener: (res: Record<string, unknown>) => void): void {
    this.addHostListener('appHide', listener)
  }

  offAppShow(listener?: (res: Record<string, unknown>) => void): void {
    this.removeHostListener('appShow', listener)
  }

  offAppHide(listener?: (res: Record<string, unknown>) => void): void {
    this.removeHostListener('appHide', listener)
  }

  setNetwork(type: NetworkType): void {
    if (this.disposed) return
    this.network = type
    const status: NetworkStatus = { isConnected: type !== 'none', networkType: type }
    this.emitHost('network', 'onNetworkStatusChange', status)
    if (type === 'none' && this.opts.killOnOffline) {
      // Android client: a dropped link surfaces as onError("network is down") then onClose(1006).
      for (const task of [...this.live]) {
        task._kill({ code: 1006, reason: CLOSE_REASON_BY_CODE[1006] }, WX_ERR_MSG.networkDownEvent)
      }
    }
  }

  hide(payload: Record<string, unknown> = { reason: 0 }): void {
    if (this.disposed) return
    const wasHidden = this.isHidden
    this.isHidden = true
    this.emitHost('appHide', 'onAppHide', payload)
    // A repeated hide() must not restart the grace period: WeChat counts from the first one.
    if (this.opts.killOnHide && !wasHidden) {
      this.backgroundTimer = this.setTimer(() => {
        this.backgroundTimer = undefined
        this.isSuspended = true
        const close: SocketCloseResult = {
          code: this.opts.backgroundCloseCode,
          reason: WX_ERR_MSG.backgroundCloseReason,
        }
        for (const task of [...this.live]) task._kill(close)
      }, this.opts.backgroundKillMs)
    }
  }

  show(payload: Record<string, unknown> = { path: 'pages/index/index', scene: 1001, query: {}, referrerInfo: {} }): void {
    // Always emits, so tests can also simulate the launch-time onAppShow.
    if (this.disposed) return
    if (this.backgroundTimer) {
      clearTimeout(this.backgroundTimer)
      this.timers.delete(this.backgroundTimer)
      this.backgroundTimer = undefined
    }
    this.isHidden = false
    this.isSuspended = false
    this.emitHost('appShow', 'onAppShow', payload)
  }

  listenerCount(): ListenerCounts {
    return {
      network: this.hostListeners.network.length,
      appShow: this.hostListeners.appShow.length,
      appHide: this.hostListeners.appHide.length,
    }
  }

  openTasks(): number {
    return this.live.size
  }

  dispose(): void {
    if (this.disposed) return
    this.disposed = true
    for (const timer of this.timers) clearTimeout(timer)
    this.timers.clear()
    this.backgroundTimer = undefined
    for (const task of this.tasks) task._dispose()
    this.live.clear()
    this.hostListeners.network = []
    this.hostListeners.appShow = []
    this.hostListeners.appHide = []
  }

  private createTask(options: ConnectSocketOptions): SimSocketTask {
    const opts: ConnectSocketOptions = options ?? ({} as ConnectSocketOptions)
    const refusal = this.refusalFor(String(opts.url))
    const id = this.nextId++
    const task = new SimSocketTask(this.hooks, id, opts, refusal)
    this.tasks.push(task)
    if (this.disposed) return task
    if (refusal) {
      this.reportRefusal(task, opts, refusal)
      return task
    }
    this.live.add(task)
    task._start()
    // A microtask is asynchronous for the caller yet always runs before any socket I/O, so
    // `success` deterministically fires while the task is still CONNECTING, as on WeChat.
    queueMicrotask(() => {
      if (this.disposed) return
      const res: ConnectSocketResult = { errMsg: WX_ERR_MSG.connectOk, socketTaskId: id }
      safeCall('connectSocket.success', opts.success, res)
      safeCall('connectSocket.complete', opts.complete, res)
    })
    return task
  }

  private refusalFor(url: string): RefusalKind | undefined {
    if (this.opts.requireWss && /^ws:/i.test(url)) return 'insecure'
    const allowed = this.opts.allowedDomains
    if (allowed && !allowed.some((domain) => domain === hostOf(url) || domain === hostOf(url, true))) return 'domain'
    if (this.isSuspended) return 'suspended'
    if (this.opts.killOnOffline && this.network === 'none') return 'offline'
    if (this.live.size >= this.opts.maxSockets) return 'limit'
    return undefined
  }

  private reportRefusal(task: SimSocketTask, opts: ConnectSocketOptions, kind: RefusalKind): void {
    const url = String(opts.url)
    const [failMsg, eventMsg] = {
      limit: [WX_ERR_MSG.exceedMaxTaskCount, WX_ERR_MSG.exceedMaxTaskCountEvent],
      suspended: [WX_ERR_MSG.suspended, WX_ERR_MSG.suspendedEvent],
      offline: [WX_ERR_MSG.networkDown, WX_ERR_MSG.networkDownEvent],
      domain: [WX_ERR_MSG.domainNotAllowed, WX_ERR_MSG.domainNotAllowedEvent],
      insecure: [WX_ERR_MSG.insecureUrl(url), WX_ERR_MSG.insecureUrl(url).replace('connectSocket:fail ', '')],
    }[kind]
    if (this.opts.refusalStyle === 'fail') {
      this.defer(() => {
        const res: CallbackResult = { errMsg: failMsg }
        safeCall('connectSocket.fail', opts.fail, res)
        safeCall('connectSocket.complete', opts.complete, res)
      })
      return
    }
    queueMicrotask(() => {
      if (this.disposed) return
      const res: ConnectSocketResult = { errMsg: WX_ERR_MSG.connectOk, socketTaskId: task.id }
      safeCall('connectSocket.success', opts.success, res)
      safeCall('connectSocket.complete', opts.complete, res)
    })
    this.defer(() => task._emitRefusalError(eventMsg))
  }

  private addHostListener(event: keyof SimHost['hostListeners'], listener: unknown): void {
    if (typeof listener !== 'function' || this.disposed) return
    this.hostListeners[event].push(listener as HostListener)
  }

  private removeHostListener(event: keyof SimHost['hostListeners'], listener: unknown): void {
    if (listener === undefined) {
      this.hostListeners[event] = []
      return
    }
    const index = this.hostListeners[event].indexOf(listener as HostListener)
    if (index >= 0) this.hostListeners[event].splice(index, 1)
  }

  private emitHost(event: keyof SimHost['hostListeners'], label: string, res: unknown): void {
    for (const listener of [...this.hostListeners[event]]) safeCall(label, listener as (r: unknown) => void, res)
  }

  /** Callbacks (and their argument) waiting for the next macrotask, in call order. */
  private deferred: unknown[] = []

  private defer<A>(fn: (arg: A) => void, arg?: A): void {
    if (this.disposed) return
    // A macrotask, like a reply over WeChat's JS bridge: never re-entrant. One setImmediate carries every
    // callback queued in the same turn, and the queue holds (fn, arg) pairs rather than fresh closures, so
    // 20k sends cost neither 20k timers nor 20k closures.
    if (this.deferred.push(fn, arg) > 2) return
    setImmediate(() => {
      const batch = this.deferred
      this.deferred = []
      for (let i = 0; i < batch.length && !this.disposed; i += 2) (batch[i] as (arg: unknown) => void)(batch[i + 1])
    })
  }

  private setTimer(fn: () => void, ms: number): ReturnType<typeof setTimeout> {
    const timer = setTimeout(() => {
      this.timers.delete(timer)
      if (!this.disposed) fn()
    }, ms)
    this.timers.add(timer)
    return timer
  }
}

/** Creates an isolated `wx` simulator; see {@link SimulatorOptions}. */
export function createWxSimulator(opts?: SimulatorOptions): WxSimHost {
  return new SimHost('wx', opts) as unknown as WxSimHost
}

/** Creates an isolated `uni` (mp-weixin build) simulator; see {@link SimulatorOptions}. */
export function createUniSimulator(opts?: SimulatorOptions): UniSimHost {
  return new SimHost('uni', opts) as unknown as UniSimHost
}

/** The host of a URL (with its port when `withPort`), or '' when it does not parse. */
function hostOf(url: string, withPort = false): string {
  try {
    const parsed = new URL(url)
    return withPort ? parsed.host : parsed.hostname
  } catch {
    return ''
  }
}

/** Whether a socket error is a failed TLS handshake (a certificate Node does not trust, or a TLS protocol error). */
function isTlsFailure(err: Error & { code?: string }): boolean {
  return /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL|EPROTO/.test(err.code ?? '') || /certificate|ssl|tls/i.test(err.message)
}
