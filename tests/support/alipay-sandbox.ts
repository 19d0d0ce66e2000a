/**
 * An Alipay-mini-program-shaped runtime for uni-app `mp-alipay` build output: a `my` host whose `connectSocket`
 * follows Alipay's documented semantics over real `ws` sockets, and a loader that runs the built files the way
 * tests/support/wechat-sandbox.ts runs WeChat's (a fresh vm context, every file in a CommonJS wrapper whose browser
 * names are undefined, ECMAScript built-ins plus console, timers, `global` and the framework functions) with `my` as
 * the only host object: there is no `wx` in it.
 *
 * Sources (Alipay's own API docs, as published in the AlipayDocs/open-docs repository, mini/api/基础API/网络/):
 * - my.connectSocket.md: options `url`, `data`, `header`, `multiple`, success/fail/complete; "传入 true 时，将返回一个
 *   包含 SocketTask 的实例" (only `multiple: true` returns a SocketTask; without it the connection is the single
 *   instance driven by `my.onSocket*`); the SocketTask methods `send`, `close`, `onOpen`, `onClose`, `onError`,
 *   `onMessage` and their `off*` twins ("接口参数同 my.sendSocketMessage / my.closeSocket / my.onSocket…"); the
 *   failure table (the `fail` argument is `{ error, errorMessage }`): 1 未知错误, 2 接口参数无效, 3 URL 参数为空 /
 *   该 appId，SocketTaskID 对应的 WebSocket 已存在 (a second single-instance socket), 4 无法识别的 URL 格式, 5 URL 必须以
 *   ws 或者 wss 开头, 6 连接服务器超时, 10 网络连接没有打开，无法发送消息; FAQ "目前最多支持 5 个 WebSocket 实例"; the
 *   sample registers `onOpen` inside `success`, so `success` comes before the link opens (it means "task created").
 * - my.onSocketMessage.md: the message event is `{ data, isBuffer }`: `data` is the text, or, with `isBuffer: true`,
 *   the binary frame as a base64 string.
 * - my.sendSocketMessage.md: `data` is text, or base64 with `isBuffer: true` for binary; send failures: 1, 10.
 * - my.onSocketError.md: error event codes 1 "Error Unknown", 8 "Invalid Sec-WebSocket-Accept response.", 50 and
 *   65 "unknown error" (network down / no route to the host).
 * - DefinitelyTyped's Alipay typings: every failure is `{ error: number; errorMessage?: string }`.
 * - Alipay typings published with a Taobao/Alipay mini-program type package (read in a public repository): `send`
 *   takes an ArrayBuffer directly from Alipay 10.5.16 on (`isBuffer` then ignored; not in the IDE); `close` accepts
 *   only code 1000 or 3000–4999; `onClose` gives `{ code, reason }`; onError codes 6 "Timed out connecting to server."
 *   and 8; the connect timeout defaults to 30 000 ms.
 * Reasoned choices where the docs say nothing (each one marked in the code): a socket past the limit of 5 fails with
 * error 1; a refused `multiple: true` call still returns a SocketTask, inert (the docs say one is returned); a refused
 * TCP connection is onError 50 then onClose 1006; a failed handshake is onError 8 then onClose 1006; a typed-array view
 * passed to `send` fails with error 2.
 *
 * uni-app's mp-alipay runtime (`@dcloudio/uni-mp-alipay`) calls `my.connectSocket` with the caller's options (it only
 * drops `method`), hands back whatever `my` returns, and rewrites the `success`/`fail` results to `{ errMsg }`
 * (`connectSocket:fail <errorMessage>`); the SocketTask and its events reach the caller untouched, in Alipay's shapes.
 */
import type { IncomingMessage } from 'node:http'
import { WebSocket } from 'ws'
import { hasCallback, isArrayBuffer, safeCall } from './sim-callbacks'
import { loadMiniProgram, type MiniProgramSandbox } from './wechat-sandbox'

/** An Alipay failure object, as `fail` callbacks and `onError` listeners receive it. */
export interface MyFailure {
  error: number
  errorMessage: string
}

/** The failures the simulator reports, from Alipay's tables (see the file header for where each comes from). */
export const MY_ERROR = {
  unknown: { error: 1, errorMessage: '未知错误。' },
  invalidParameter: { error: 2, errorMessage: '接口参数无效。' },
  singleInstanceExists: { error: 3, errorMessage: '该 appId，SocketTaskID 对应的 WebSocket 已存在。' },
  urlEmpty: { error: 3, errorMessage: 'URL 参数为空。' },
  urlUnrecognised: { error: 4, errorMessage: '无法识别的 URL 格式。' },
  urlScheme: { error: 5, errorMessage: 'URL 必须以 ws 或者 wss 开头。' },
  notOpen: { error: 10, errorMessage: '网络连接没有打开，无法发送消息。' },
  /** Not documented for the 6th socket: the generic "unknown" failure is the reasoned choice. */
  socketLimit: { error: 1, errorMessage: '未知错误。' },
  /** onError. */
  timeout: { error: 6, errorMessage: 'Timed out connecting to server.' },
  /** onError: the server did not accept the WebSocket upgrade. */
  badHandshake: { error: 8, errorMessage: 'Invalid Sec-WebSocket-Accept response.' },
  /** onError: the link could not be made or broke (refused, reset): "请检查网络连接". */
  network: { error: 50, errorMessage: 'unknown error' },
} as const satisfies Record<string, MyFailure>

type Callbacks = { success?: (res: unknown) => void; fail?: (res: MyFailure) => void; complete?: (res: unknown) => void }

/** `my.connectSocket` options (Alipay's, plus what uni passes through such as `protocols` and `timeout`). */
export interface MyConnectSocketOptions extends Callbacks {
  url: string
  data?: Record<string, unknown>
  header?: Record<string, string>
  multiple?: boolean
  protocols?: string[]
  timeout?: number
  [key: string]: unknown
}

/** The message event: text, or a binary frame as base64 with `isBuffer: true` (or an ArrayBuffer, see options). */
export interface MyMessageEvent {
  data: string | ArrayBuffer
  isBuffer: boolean
}

/** Options of {@link createMySimulator}. */
export interface MySimulatorOptions {
  /** Sockets at once (Alipay: 5). */
  maxSockets?: number
  /** Handshake timeout when the caller gives none (Alipay: 30 000 ms). */
  defaultTimeoutMs?: number
  /**
   * How binary frames are handed over: `'base64'` (default, as my.onSocketMessage documents: a base64 string with
   * `isBuffer: true`) or `'arraybuffer'` (the "String / ArrayBuffer" type the same table names).
   */
  binaryMessages?: 'base64' | 'arraybuffer'
}

type TaskEvent = 'open' | 'close' | 'error' | 'message'
const STATE = { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 } as const

/** Runs `fn(arg)` on a later macrotask, as Alipay's bridge answers: never re-entrant. */
function later<A>(fn: (arg: A) => void, arg: A): void {
  setImmediate(fn, arg)
}

function answer(options: Callbacks | undefined, failure?: MyFailure, result: Record<string, unknown> = {}): void {
  if (!options) return
  later(() => {
    if (failure) safeCall('fail', options.fail, { ...failure })
    else safeCall('success', options.success, result)
    safeCall('complete', options.complete, failure ? { ...failure } : result)
  }, undefined)
}

/** An Alipay SocketTask over a real `ws` client socket (made by {@link MySimHost.connectSocket} only). */
export class MySocketTask {
  /** Alipay's `socketTaskID`. */
  readonly id: number
  /** The options `connectSocket` got, without the callbacks. */
  readonly options: Readonly<Omit<MyConnectSocketOptions, 'success' | 'fail' | 'complete'>>
  /** Every failure reported on this task's `onError`, in order (for assertions). */
  readonly errors: MyFailure[] = []
  private state: number = STATE.CONNECTING
  private ws: WebSocket | undefined
  private readonly listeners: Record<TaskEvent, ((res: never) => void)[]> = { open: [], close: [], error: [], message: [] }
  private responseHeaders: Record<string, string> = {}
  private closeAsked: { code: number; reason: string } | undefined
  private failed = false

  /** @internal */
  constructor(
    id: number,
    options: MyConnectSocketOptions,
    private readonly host: { release(task: MySocketTask): void; timeoutMs: number; binary: 'base64' | 'arraybuffer' },
    refused = false,
  ) {
    this.id = id
    if (refused) this.state = STATE.CLOSED
    const { success: _s, fail: _f, complete: _c, ...rest } = options
    this.options = Object.freeze({ ...rest })
  }

  /** 0 connecting, 1 open, 2 closing, 3 closed (the typings' `readyState`). */
  get readyState(): number {
    return this.state
  }

  onOpen(listener: (res: { header: Record<string, string> }) => void): void {
    this.on('open', listener)
  }
  onClose(listener: (res: { code: number; reason: string }) => void): void {
    this.on('close', listener)
  }
  onError(listener: (res: MyFailure) => void): void {
    this.on('error', listener)
  }
  onMessage(listener: (res: MyMessageEvent) => void): void {
    this.on('message', listener)
  }
  offOpen(listener?: (res: never) => void): void {
    this.off('open', listener)
  }
  offClose(listener?: (res: never) => void): void {
    this.off('close', listener)
  }
  offError(listener?: (res: never) => void): void {
    this.off('error', listener)
  }
  offMessage(listener?: (res: never) => void): void {
    this.off('message', listener)
  }

  /**
   * Text as a text frame; base64 text with `isBuffer: true` as a binary frame; an ArrayBuffer as a binary frame
   * (Alipay 10.5.16+). Before the link is open: error 10.
   */
  send(options: Callbacks & { data?: unknown; isBuffer?: boolean }): void {
    const opts = options ?? {}
    if (this.state !== STATE.OPEN || !this.ws) return answer(opts, MY_ERROR.notOpen)
    const data = opts.data
    let payload: string | Buffer
    if (isArrayBuffer(data)) payload = Buffer.from(new Uint8Array(data).slice())
    else if (typeof data === 'string') payload = opts.isBuffer === true ? Buffer.from(data, 'base64') : data
    // Not documented: anything else (a Uint8Array, a number) is refused as an invalid parameter.
    else return answer(opts, MY_ERROR.invalidParameter)
    this.ws.send(payload)
    answer(opts)
  }

  /** Closes with `code` (1000 or 3000–4999, else error 2) and `reason`. On a task that is not open: error 10. */
  close(options?: Callbacks & { code?: number; reason?: string }): void {
    const opts = options ?? {}
    const code = opts.code ?? 1000
    if (!(code === 1000 || (code >= 3000 && code <= 4999))) return answer(opts, MY_ERROR.invalidParameter)
    if (this.state === STATE.CLOSED || !this.ws) return answer(opts, MY_ERROR.notOpen)
    const reason = typeof opts.reason === 'string' ? opts.reason : ''
    if (this.state === STATE.CONNECTING) {
      this.closeAsked = { code, reason }
      this.state = STATE.CLOSING
      this.ws.terminate()
    } else if (this.state === STATE.OPEN) {
      this.state = STATE.CLOSING
      this.ws.close(code, reason)
    }
    answer(opts)
  }

  /** @internal Opens the real socket. */
  _start(): void {
    const { url, header, protocols, timeout } = this.options as MyConnectSocketOptions
    const headers: Record<string, string> = {}
    for (const [key, value] of Object.entries(header ?? {})) headers[key] = String(value)
    const ws = new WebSocket(url, Array.isArray(protocols) && protocols.length ? protocols : undefined, {
      headers,
      handshakeTimeout: typeof timeout === 'number' && timeout > 0 ? timeout : this.host.timeoutMs,
      perMessageDeflate: false,
    })
    this.ws = ws
    ws.on('upgrade', (res: IncomingMessage) => {
      for (const [key, value] of Object.entries(res.headers)) if (value !== undefined) this.responseHeaders[key] = String(value)
    })
    ws.on('open', () => {
      if (this.state !== STATE.CONNECTING) return
      this.state = STATE.OPEN
      this.emit('open', { header: { ...this.responseHeaders } })
    })
    ws.on('message', (raw: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      if (this.state === STATE.CLOSED) return
      const buf = Array.isArray(raw) ? Buffer.concat(raw) : Buffer.isBuffer(raw) ? raw : Buffer.from(raw)
      if (!isBinary) return this.emit('message', { data: buf.toString('utf8'), isBuffer: false })
      if (this.host.binary === 'base64') return this.emit('message', { data: buf.toString('base64'), isBuffer: true })
      const copy = new ArrayBuffer(buf.byteLength)
      new Uint8Array(copy).set(buf)
      this.emit('message', { data: copy, isBuffer: true })
    })
    ws.on('error', (error: Error) => {
      if (this.closeAsked || this.failed) return
      this.failed = true
      // Not documented which number a refused connection gets: 50 (network) for socket errors, 8 for a refused
      // upgrade (Alipay's "Invalid Sec-WebSocket-Accept response."), 6 for the handshake timeout.
      const failure = /handshake has timed out/i.test(error.message)
        ? MY_ERROR.timeout
        : /Unexpected server response|Invalid Sec-WebSocket/i.test(error.message)
          ? MY_ERROR.badHandshake
          : MY_ERROR.network
      this.errors.push({ ...failure })
      this.emit('error', { ...failure })
    })
    ws.on('close', (code: number, reason: Buffer) => {
      this.state = STATE.CLOSED
      this.host.release(this)
      this.emit('close', this.closeAsked ?? { code, reason: reason.toString('utf8') })
    })
  }

  /** @internal Silent teardown. */
  _dispose(): void {
    this.state = STATE.CLOSED
    for (const key of Object.keys(this.listeners) as TaskEvent[]) this.listeners[key] = []
    if (this.ws) {
      this.ws.removeAllListeners()
      this.ws.on('error', () => {})
      this.ws.terminate()
    }
    this.host.release(this)
  }

  private on(event: TaskEvent, listener: unknown): void {
    if (typeof listener === 'function') this.listeners[event] = [...this.listeners[event], listener as (res: never) => void]
  }

  private off(event: TaskEvent, listener: unknown): void {
    this.listeners[event] = listener === undefined ? [] : this.listeners[event].filter((l) => l !== listener)
  }

  private emit(event: TaskEvent, res: unknown): void {
    for (const listener of this.listeners[event])
      safeCall(`SocketTask.on${event[0].toUpperCase()}${event.slice(1)}`, listener as (r: unknown) => void, res)
  }
}

type HostEvent = 'network' | 'appShow' | 'appHide'

/** The `my` host: sockets plus the network and app-lifecycle APIs uni's mp-alipay runtime forwards to. */
export class MySimHost {
  /** Every SocketTask that got a socket (the inert tasks of refused calls are not here). */
  readonly tasks: MySocketTask[] = []
  /** Every `connectSocket` call's options, in order, without callbacks. */
  readonly connectCalls: Readonly<Record<string, unknown>>[] = []
  private readonly live = new Set<MySocketTask>()
  private single: MySocketTask | undefined
  private nextId = 1
  private networkType = 'WIFI'
  private readonly hostListeners: Record<HostEvent, ((res: never) => void)[]> = { network: [], appShow: [], appHide: [] }
  private readonly opts: Required<MySimulatorOptions>
  private readonly taskHost: { release(task: MySocketTask): void; timeoutMs: number; binary: 'base64' | 'arraybuffer' }

  constructor(options: MySimulatorOptions = {}) {
    this.opts = {
      maxSockets: options.maxSockets ?? 5,
      defaultTimeoutMs: options.defaultTimeoutMs ?? 30_000,
      binaryMessages: options.binaryMessages ?? 'base64',
    }
    this.taskHost = {
      release: (task) => {
        this.live.delete(task)
        if (this.single === task) this.single = undefined
      },
      timeoutMs: this.opts.defaultTimeoutMs,
      binary: this.opts.binaryMessages,
    }
  }

  /**
   * With `multiple: true`, returns a SocketTask (`success` follows, before the link opens); without it, the single
   * instance is made and nothing is returned. Refusals answer on `fail` only, with `{ error, errorMessage }` (the task
   * returned then is inert).
   */
  connectSocket(options: MyConnectSocketOptions): MySocketTask | undefined {
    const opts = options ?? ({} as MyConnectSocketOptions)
    const { success: _s, fail: _f, complete: _c, ...rest } = opts
    this.connectCalls.push(Object.freeze({ ...rest }))
    const multiple = opts.multiple === true
    const url = opts.url
    const refusal =
      typeof url !== 'string'
        ? MY_ERROR.invalidParameter
        : url === ''
          ? MY_ERROR.urlEmpty
          : !URL.canParse(url)
            ? MY_ERROR.urlUnrecognised
            : !/^wss?:$/.test(new URL(url).protocol)
              ? MY_ERROR.urlScheme
              : !multiple && this.single
                ? MY_ERROR.singleInstanceExists
                : this.live.size >= this.opts.maxSockets
                  ? MY_ERROR.socketLimit
                  : undefined
    if (refusal) {
      answer(opts, refusal)
      // Not documented: the docs say `multiple: true` returns a SocketTask, so a refused call still hands one back, inert
      // (closed, never firing an event); `fail` is the only answer.
      return multiple ? new MySocketTask(this.nextId++, opts, this.taskHost, true) : undefined
    }
    const task = new MySocketTask(this.nextId++, opts, this.taskHost)
    this.tasks.push(task)
    this.live.add(task)
    if (!multiple) this.single = task
    task._start()
    // A microtask: asynchronous for the caller, yet before any socket I/O, so `success` comes while still connecting.
    queueMicrotask(() => {
      const res = { socketTaskID: String(task.id) }
      safeCall('connectSocket.success', opts.success, res)
      safeCall('connectSocket.complete', opts.complete, res)
    })
    return multiple ? task : undefined
  }

  /** Sockets holding a slot (made and not yet closed). */
  openTasks(): number {
    return this.live.size
  }

  canIUse(): boolean {
    return true
  }

  /** `my.base64ToArrayBuffer`: a fresh ArrayBuffer of exactly the decoded bytes. */
  base64ToArrayBuffer(base64: string): ArrayBuffer {
    const bytes = Buffer.from(base64, 'base64')
    return new Uint8Array(bytes).buffer
  }

  /** `{ networkAvailable, networkType }` with Alipay's upper-case types (WIFI, 4G, NOTREACHABLE…). */
  getNetworkType(options?: Callbacks): void | Promise<unknown> {
    const make = () => ({ networkAvailable: this.networkType !== 'NOTREACHABLE', networkType: this.networkType })
    if (!hasCallback(options)) return new Promise((resolve) => later(resolve, make()))
    answer(options, undefined, make())
  }
  onNetworkStatusChange(listener: (res: { isConnected: boolean; networkType: string }) => void): void {
    this.addHostListener('network', listener)
  }
  offNetworkStatusChange(listener?: (res: never) => void): void {
    this.removeHostListener('network', listener)
  }
  onAppShow(listener: (res: unknown) => void): void {
    this.addHostListener('appShow', listener)
  }
  offAppShow(listener?: (res: never) => void): void {
    this.removeHostListener('appShow', listener)
  }
  onAppHide(listener: (res: unknown) => void): void {
    this.addHostListener('appHide', listener)
  }
  offAppHide(listener?: (res: never) => void): void {
    this.removeHostListener('appHide', listener)
  }

  /** Test control: switch the network (Alipay's names) and tell the listeners. */
  setNetwork(networkType: string): void {
    this.networkType = networkType
    for (const l of [...this.hostListeners.network])
      safeCall('onNetworkStatusChange', l as (r: unknown) => void, { isConnected: networkType !== 'NOTREACHABLE', networkType })
  }

  /** Listeners per host event, for leak checks. */
  listenerCount(): Record<HostEvent, number> {
    return { network: this.hostListeners.network.length, appShow: this.hostListeners.appShow.length, appHide: this.hostListeners.appHide.length }
  }

  /** Terminates every socket silently and drops every listener. */
  dispose(): void {
    for (const task of this.tasks) task._dispose()
    this.live.clear()
    this.hostListeners.network = []
    this.hostListeners.appShow = []
    this.hostListeners.appHide = []
  }

  private addHostListener(event: HostEvent, listener: unknown): void {
    if (typeof listener === 'function') this.hostListeners[event].push(listener as (res: never) => void)
  }

  private removeHostListener(event: HostEvent, listener: unknown): void {
    this.hostListeners[event] = listener === undefined ? [] : this.hostListeners[event].filter((l) => l !== listener)
  }
}

/** A fresh Alipay-shaped `my`; see {@link MySimulatorOptions}. */
export function createMySimulator(options?: MySimulatorOptions): MySimHost {
  return new MySimHost(options)
}

/** What Alipay's `my.getSystemInfoSync()` answers (the field names of its docs), for uni's runtime at load. */
const SYSTEM_INFO = {
  app: 'alipay',
  brand: 'sandbox',
  model: 'sandbox',
  platform: 'Android',
  system: '14',
  version: '10.5.36',
  language: 'zh-Hans',
  pixelRatio: 2,
  screenWidth: 375,
  screenHeight: 812,
  windowWidth: 375,
  windowHeight: 812,
  statusBarHeight: 44,
  titleBarHeight: 48,
  fontSizeSetting: 16,
  storage: '64 GB',
  currentBattery: '100%',
}

/**
 * Loads a uni-app mp-alipay build output folder with `my` as its host (wrapped, never mutated; see
 * tests/support/wechat-sandbox.ts for the loader). Nothing runs until `require` is called.
 */
export function loadAlipayMiniProgram(dir: string, options: { my: object; extraGlobals?: Record<string, unknown> }): MiniProgramSandbox {
  return loadMiniProgram(dir, {
    wx: options.my,
    hostName: 'my',
    hostDefaults: { getSystemInfoSync: SYSTEM_INFO },
    extraGlobals: options.extraGlobals,
  })
}
