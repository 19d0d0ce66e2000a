/**
 * Faithful simulator of `wx.request` and `uni.request` (mp-weixin build) with their RequestTask, backed by real HTTP
 * over `node:http` on loopback, so LongLink's Server-Sent Events transport (`enableChunked: true`) is tested against
 * the awkward semantics of the real hosts instead of an idealised mock. H5 is not simulated: there the plugin uses
 * `fetch`.
 *
 * Sources for the reproduced behaviour (looked up, quoted where used):
 * - WeChat docs `wx.request` / `RequestTask` (developers.weixin.qq.com/miniprogram/dev/api/network/request/...) and
 *   the installed `miniprogram-api-typings`: options, `enableChunked` (base library 2.20.2), `onHeadersReceived`
 *   payload `{ header, statusCode, cookies }`, `onChunkReceived` payload `{ data: ArrayBuffer }`, "offChunkReceived:
 *   不传此参数则移除所有监听函数", `redirect: 'follow' | 'manual'`, "header 中不能设置 Referer", "content-type 默认为
 *   application/json", the data conversion rules for GET / JSON / urlencoded bodies.
 * - WeChat docs "网络使用说明": "默认超时时间和最大超时时间都是 60s"; "wx.request、wx.uploadFile、wx.downloadFile 的最大
 *   并发限制是 10 个"; "小程序进入后台运行后（非置顶聊天），如果 5s 内网络请求没有结束，会回调错误信息 fail interrupted；在回到
 *   前台之前，网络请求接口调用都会无法调用"; "只要成功接收到服务器返回，无论 statusCode 是多少，都会进入 success 回调";
 *   "小程序会自动对 BOM 头进行过滤（只过滤一个BOM头）"; the Referer is fixed to
 *   `https://servicewechat.com/{appid}/{version}/page-frame.html`.
 * - A community answer on `enableChunked`: success "还是会被调用, 但是数据是通过 task.onChunkReceived 回调返回的" => the
 *   body of a chunked request is only delivered through chunks, never again in `success`.
 * - uni-app docs and the installed `@dcloudio/uni-mp-weixin` (`promisify()` + the task-API wrapper): `uni.request`
 *   with at least one of success/fail/complete calls `wx.request` with a copy of the options and returns its task
 *   (marked `__v_skip` so Vue never proxies it); without callbacks it returns a Promise resolved with the success
 *   result / rejected with the fail result, and the task is unreachable.
 *
 * Everything is per simulator instance; the module holds no mutable state.
 */
import http from 'node:http'
import type { CallbackResult } from './socket-task-sim'
import { hasCallback, isArrayBuffer, safeCall, typeName } from './sim-callbacks'

export type { CallbackResult } from './socket-task-sim'

/**
 * The errMsg strings the simulator produces. Exported so tests assert against one source of truth.
 *
 * Provenance (what is confirmed and what is a reasoned choice):
 * - `ok`, `timeout`, `abort`, `interrupted`: verbatim, the texts clients everywhere compare against.
 * - `suspended`: verbatim from a community report of a request made while the app was suspended in background.
 * - `exceedMaxTaskCount`: the wording of WeChat errno 600007 ("network exceed max task count", see
 *   socket-task-sim.ts) with the usual `request:fail ` prefix; NOT confirmed for `wx.request` (base library 1.4.0 and later queue an 11th request
 *   instead of failing it, see {@link OverLimitStyle}). Rely on the `request:fail` prefix only.
 * - `notInDomainList`: verbatim WeChat text for a host missing from the request domain list; the simulator's domain
 *   list is loopback (`http://127.0.0.0/8`, `localhost`, `[::1]`).
 * - `parameterError`: the WeChat parameter-check format used across APIs; not confirmed for `url` specifically.
 * - `connectionRefused`, `connectionReset`, `emptyResponse`, `incompleteChunked`, `contentLengthMismatch`,
 *   `tooManyRedirects`: Android (Cronet) style, `request:fail <chromium net error code>:net::<name>` as in reported
 *   texts such as "request:fail -324:net::ERR_EMPTY_RESPONSE"; iOS words them differently, so clients should only
 *   rely on the `request:fail` prefix.
 */
export const REQUEST_ERR_MSG = {
  ok: 'request:ok',
  timeout: 'request:fail timeout',
  abort: 'request:fail abort',
  interrupted: 'request:fail interrupted',
  suspended:
    'request:fail createRequestTask:fail: jsapi has no permission, event=createRequestTask, runningState=suspend, permissionMsg=permission ok, detail=network api interrupted in suspend state',
  exceedMaxTaskCount: 'request:fail exceed max task count',
  notInDomainList: 'request:fail url not in domain list',
  invalidUrl: 'request:fail invalid url',
  parameterError: (name: string, expected: string, actualType: string): string =>
    `request:fail parameter error: parameter.${name} should be ${expected} instead of ${actualType};`,
  connectionRefused: 'request:fail -102:net::ERR_CONNECTION_REFUSED',
  connectionReset: 'request:fail -101:net::ERR_CONNECTION_RESET',
  emptyResponse: 'request:fail -324:net::ERR_EMPTY_RESPONSE',
  incompleteChunked: 'request:fail -355:net::ERR_INCOMPLETE_CHUNKED_ENCODING',
  contentLengthMismatch: 'request:fail -354:net::ERR_CONTENT_LENGTH_MISMATCH',
  tooManyRedirects: 'request:fail -310:net::ERR_TOO_MANY_REDIRECTS',
} as const

/** Redirects followed before giving up, as Chromium (and so Cronet on Android) does. */
const MAX_REDIRECTS = 20

/** Success result of a request. */
export interface RequestSuccessResult extends CallbackResult {
  /**
   * The body: a fresh ArrayBuffer for `responseType: 'arraybuffer'`, otherwise the UTF-8 text (one leading BOM
   * removed), JSON-parsed when `dataType` is `'json'` (the default) and the text parses. With `enableChunked` the
   * body only arrives through `onChunkReceived`, and `data` is empty: `''`, or an empty ArrayBuffer for
   * `responseType: 'arraybuffer'`.
   */
  data: unknown
  statusCode: number
  /** Response headers, see {@link RequestSimulatorOptions.headerCase}; repeated headers joined with `,`. */
  header: Record<string, string>
  /** Every `Set-Cookie` value, in order. */
  cookies: string[]
}

/** Payload of `onHeadersReceived`. */
export interface HeadersReceivedResult {
  header: Record<string, string>
  statusCode: number
  cookies: string[]
}

/** Payload of `onChunkReceived`: a fresh ArrayBuffer holding exactly the chunk's bytes. */
export interface ChunkReceivedResult {
  data: ArrayBuffer
}

/** The usual success/fail/complete triple, typed for `request`. */
export interface RequestCallbacks {
  success?: (res: RequestSuccessResult) => void
  fail?: (res: CallbackResult) => void
  complete?: (res: CallbackResult) => void
}

/**
 * Options of `request` except the callbacks, as documented by WeChat. Options that change nothing on loopback
 * (enableHttp2, enableQuic, enableCache, enableHttpDNS, forceCellularNetwork, enableProfile...) are accepted and
 * ignored.
 */
export interface RequestParams {
  url: string
  /** Upper-cased before sending (default `GET`). */
  method?: string
  /** Request headers; `Referer` is dropped (WeChat sets its own), `content-type` defaults to `application/json`. */
  header?: Record<string, unknown>
  /**
   * Body. GET: a non-null object becomes the query string (`encodeURIComponent(k)=encodeURIComponent(v)&...`), a
   * string or ArrayBuffer is not sent. Other methods: a string or ArrayBuffer is sent as is; an object is JSON for a
   * JSON content-type, a query string for `application/x-www-form-urlencoded`, `String(data)` otherwise.
   */
  data?: unknown
  /** Milliseconds; values above the cap (or missing, or not positive) mean the cap, see {@link RequestSimulatorOptions.capMs}. */
  timeout?: number
  /** `'json'` (default): parse the text body; anything else: leave it as text. */
  dataType?: string
  /** `'arraybuffer'` for an ArrayBuffer body; anything else means text. */
  responseType?: string
  /** Deliver the body through `onChunkReceived` as it arrives. */
  enableChunked?: boolean
  /** `'follow'` (default) follows up to 20 redirects; `'manual'` ends the request with the 3xx answer. */
  redirect?: 'follow' | 'manual'
  [key: string]: unknown
}

/** Options of `request`: {@link RequestParams} plus success/fail/complete. */
export interface RequestOptions extends RequestParams, RequestCallbacks {}

/** Options with at least one callback: `uni.request` then returns the task. */
export type RequestOptionsWithCallback = RequestOptions &
  (
    | { success: NonNullable<RequestCallbacks['success']> }
    | { fail: NonNullable<RequestCallbacks['fail']> }
    | { complete: NonNullable<RequestCallbacks['complete']> }
  )

/** Options without any callback: `uni.request` then returns a Promise. */
export type RequestOptionsWithoutCallback = RequestOptions & { success?: undefined; fail?: undefined; complete?: undefined }

/**
 * How the simulator cuts the body bytes of a chunked response into `onChunkReceived` chunks. Whatever the mode, a
 * chunk also ends wherever the bytes arrived from the socket, so nothing is ever held back waiting for more data.
 * - `'random'` (default): planned cuts at random byte offsets, each chunk 1..`maxBytes` (default 32) bytes, from a
 *   PRNG seeded with `seed` (default 1) and the request id, so a given seed plans the same cuts for the same
 *   request whatever other requests do. Cuts land inside UTF-8 characters and between CR and LF.
 * - `'fixed'`: a planned cut every `bytes` bytes (`bytes: 1` delivers byte by byte).
 * - `'none'`: exactly what the socket delivered.
 */
export type ChunkSplit = { mode: 'random'; seed?: number; maxBytes?: number } | { mode: 'fixed'; bytes: number } | { mode: 'none' }

/**
 * What happens to a request made while `maxRequests` are in flight.
 * - `'fail'` (default): `fail` then `complete` with {@link REQUEST_ERR_MSG}`.exceedMaxTaskCount`, nothing sent; what
 *   base libraries before 1.4.0 did.
 * - `'queue'`: the request waits and is sent when a slot frees, in call order; what base library 1.4.0 and later do.
 *   Its timeout and cap count from the call, so it can time out while waiting.
 */
export type OverLimitStyle = 'fail' | 'queue'

/** Options of {@link createRequestSimulator}. */
export interface RequestSimulatorOptions {
  /** Hard cap on any request's duration whatever `timeout` says (default 60 000 ms, as on devices). */
  capMs?: number
  /** Requests in flight at once (default 10). */
  maxRequests?: number
  /** See {@link OverLimitStyle} (default `'fail'`). */
  overLimit?: OverLimitStyle
  /** Interrupt requests still running `backgroundKillMs` after `hide()` (default true; false = pinned chat). */
  killOnHide?: boolean
  /** Grace period in background before requests fail with `request:fail interrupted` (default 5000 ms). */
  backgroundKillMs?: number
  /** How chunked bodies are cut, see {@link ChunkSplit} (default `{ mode: 'random', seed: 1, maxBytes: 32 }`). */
  split?: ChunkSplit
  /**
   * Response header names: `'as-sent'` (default) keeps the server's spelling (`Content-Type`), so client code must
   * look headers up case-insensitively as it must on devices; `'lower'` lower-cases them.
   */
  headerCase?: 'as-sent' | 'lower'
  /** Referer sent with every request, `false` for none (default the DevTools-style page-frame URL). */
  referer?: string | false
}

/** Why a request was settled without reaching the network. */
export type RequestRefusal = 'parameter' | 'limit' | 'suspended' | 'url'

/** Lifecycle of a task: waiting for a slot, in flight, or settled (success or fail decided). */
export type RequestTaskState = 'queued' | 'active' | 'done'

/** `wx.request`: always returns the task. */
export interface WxRequestApi {
  /** Returns a RequestTask synchronously; every callback and event comes later, on another macrotask. */
  request(options: RequestOptions): SimRequestTask
}

/** `uni.request` on mp-weixin: the task only when a callback is given, otherwise a Promise. */
export interface UniRequestApi {
  /** With at least one of success/fail/complete: calls `wx.request` and returns its task. */
  request(options: RequestOptionsWithCallback): SimRequestTask
  /** Without callbacks: a Promise of the success result (rejected with the fail result); the task is unreachable. */
  request(options: RequestOptionsWithoutCallback): Promise<RequestSuccessResult>
  request(options: RequestOptions): SimRequestTask | Promise<RequestSuccessResult>
}

/** The simulator: both API flavours over one shared request limit and app lifecycle. */
export interface RequestSimulator {
  /** `wx` flavour. */
  readonly wx: WxRequestApi
  /** `uni` (mp-weixin build) flavour; calls the same `wx.request`. */
  readonly uni: UniRequestApi
  /** Every task ever created, including refused ones and those behind a uni Promise. */
  readonly tasks: readonly SimRequestTask[]
  /** True between `hide()` and `show()`. */
  readonly hidden: boolean
  /** True once the background grace period elapsed (requests are then refused until `show()`). */
  readonly suspended: boolean
  /** Test control: app to background; starts the grace period unless already hidden. */
  hide(): void
  /** Test control: app to foreground; cancels a pending background kill and lifts the suspension. */
  show(): void
  /** Requests occupying a slot (in flight). */
  active(): number
  /** Requests waiting for a slot (only with `overLimit: 'queue'`). */
  queued(): number
  /** Tear everything down silently: destroy sockets, cancel timers, drop pending callbacks (Promises stay pending). */
  close(): void
}

/** What a task needs from its host; kept narrow so a task cannot touch other host state. */
interface TaskHostHooks {
  /** Runs `fn` on a later macrotask, in call order, unless the host was closed. */
  defer(fn: () => void): void
  /** Called exactly once when the task stops occupying a slot or leaves the queue. */
  release(task: SimRequestTask): void
  setTimer(fn: () => void, ms: number): ReturnType<typeof setTimeout>
  clearTimer(timer: ReturnType<typeof setTimeout> | undefined): void
  readonly agent: http.Agent
  readonly capMs: number
  readonly split: ChunkSplit
  readonly headerCase: 'as-sent' | 'lower'
  readonly referer: string | false
}

/** A fresh ArrayBuffer of exactly these bytes: Node Buffers are views into shared pools. */
function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  const copy = new Uint8Array(bytes.byteLength)
  copy.set(bytes)
  return copy.buffer
}

/** Small, fast, seedable PRNG (mulberry32); returns floats in [0, 1). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const DEFAULT_SPLIT: ChunkSplit = { mode: 'random', seed: 1, maxBytes: 32 }

/**
 * Creates the stateful cutter the simulator runs over one response body: feed it the byte runs in arrival order and
 * it returns the chunks to deliver (views into the input, never empty). Exported so tests can check the cut plan
 * without a network. `stream` distinguishes independent bodies under one seed (the simulator passes the request id).
 */
export function createChunkSplitter(split: ChunkSplit = DEFAULT_SPLIT, stream = 0): (bytes: Uint8Array) => Uint8Array[] {
  if (split.mode === 'none') return (bytes) => (bytes.byteLength > 0 ? [bytes] : [])
  let draw: () => number
  if (split.mode === 'fixed') {
    const size = Math.max(1, Math.floor(split.bytes))
    draw = () => size
  } else {
    const max = Math.max(1, Math.floor(split.maxBytes ?? 32))
    // Mixing the stream id into the seed keeps each request's plan independent of how requests interleave.
    const rng = mulberry32((split.seed ?? 1) ^ Math.imul(stream + 1, 0x9e3779b1))
    draw = () => 1 + Math.floor(rng() * max)
  }
  let offset = 0 // body bytes handed out so far
  let nextCut = draw() // absolute body offset of the next planned cut
  return (bytes) => {
    const out: Uint8Array[] = []
    // An arrival boundary that coincides with (or passed) a planned cut already serves as that cut.
    while (nextCut <= offset) nextCut += draw()
    let start = 0
    while (offset + (bytes.byteLength - start) > nextCut) {
      const end = start + (nextCut - offset)
      out.push(bytes.subarray(start, end))
      offset += end - start
      start = end
      nextCut += draw()
    }
    if (start < bytes.byteLength) {
      out.push(bytes.subarray(start))
      offset += bytes.byteLength - start
    }
    return out
  }
}

/** The simulator's request domain list: plain HTTP to loopback. */
function checkUrl(raw: string): URL | 'invalid' | 'not-allowed' {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return 'invalid'
  }
  if (url.protocol !== 'http:') return 'not-allowed'
  const host = url.hostname
  if (host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)) return url
  return 'not-allowed'
}

/** `encodeURIComponent(k)=encodeURIComponent(v)&...`, the conversion WeChat documents for GET and urlencoded data. */
function toQueryString(data: object): string {
  return Object.entries(data)
    .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(String(value))}`)
    .join('&')
}

function findHeader(headers: Record<string, string>, name: string): string | undefined {
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name)
  return key === undefined ? undefined : headers[key]
}

/**
 * The request body per WeChat's documented conversion; GET data goes into `target`'s query string instead (a string
 * or ArrayBuffer on GET is not sent: the docs only define object data for GET).
 */
function encodeBody(method: string, data: unknown, headers: Record<string, string>, target: URL): Buffer | undefined {
  if (method === 'GET') {
    if (data !== null && typeof data === 'object' && !isArrayBuffer(data)) {
      const query = toQueryString(data)
      if (query !== '') target.search = target.search ? `${target.search}&${query}` : `?${query}`
    }
    return undefined
  }
  if (typeof data === 'string') return Buffer.from(data, 'utf8')
  // A copy, so later mutation of the caller's buffer cannot change what was sent.
  if (isArrayBuffer(data)) return Buffer.from(new Uint8Array(data).slice())
  if (data === null || typeof data !== 'object') return undefined
  const contentType = (findHeader(headers, 'content-type') ?? '').toLowerCase()
  if (contentType.startsWith('application/json')) return Buffer.from(JSON.stringify(data), 'utf8')
  if (contentType.startsWith('application/x-www-form-urlencoded')) return Buffer.from(toQueryString(data), 'utf8')
  return Buffer.from(String(data), 'utf8')
}

/** Response headers flattened from `rawHeaders`, so the server's spelling survives (Node lower-cases `headers`). */
function flattenResponseHeaders(raw: string[], headerCase: 'as-sent' | 'lower'): { header: Record<string, string>; cookies: string[] } {
  const header: Record<string, string> = {}
  const spelling = new Map<string, string>()
  const cookies: string[] = []
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const lower = raw[i].toLowerCase()
    const value = raw[i + 1]
    if (lower === 'set-cookie') cookies.push(value)
    let name = spelling.get(lower)
    if (name === undefined) {
      name = headerCase === 'lower' ? lower : raw[i]
      spelling.set(lower, name)
      header[name] = value
    } else {
      header[name] = `${header[name]},${value}`
    }
  }
  return { header, cookies }
}

function fetchErrorMsg(err: NodeJS.ErrnoException, gotResponse: boolean): string {
  if (err.code === 'ECONNREFUSED') return REQUEST_ERR_MSG.connectionRefused
  // Node says "socket hang up" (ECONNRESET) when the peer closed before answering: Chromium's "empty response".
  if (err.code === 'ECONNRESET') return gotResponse ? REQUEST_ERR_MSG.connectionReset : REQUEST_ERR_MSG.emptyResponse
  return `request:fail ${err.message}`
}

type TaskEvent = 'headersReceived' | 'chunkReceived'

/**
 * A WeChat-like RequestTask backed by a real `node:http` request.
 *
 * Not constructed directly: use `sim.wx.request()` / `sim.uni.request()`. Like WeChat, the request starts as soon as
 * the task exists; since every event is delivered on a later macrotask, listeners registered synchronously after
 * the call see everything.
 */
export class SimRequestTask {
  /** Simulator-wide increasing id. */
  readonly id: number
  /** The URL passed to `request` (before GET data was appended). */
  readonly url: string
  /** A copy of the options without the callbacks, for inspection. */
  readonly options: Readonly<RequestParams>
  /** Set by uni's task-API wrapper so Vue never makes the task reactive. */
  __v_skip?: boolean

  private current: RequestTaskState = 'queued'
  private refusal: RequestRefusal | undefined
  private settledWith: string | undefined
  /** Set by local terminations (abort, timeout, background kill): queued header/chunk events are then dropped. */
  private cutOff = false
  private released = false
  private disposed = false
  private req: http.ClientRequest | undefined
  private res: http.IncomingMessage | undefined
  private capTimer: ReturnType<typeof setTimeout> | undefined
  private redirects = 0
  private readonly callbacks: RequestCallbacks
  private readonly listeners: Record<TaskEvent, Array<(res: never) => void>> = { headersReceived: [], chunkReceived: [] }

  /** @internal Created by the simulator only. */
  constructor(
    private readonly hooks: TaskHostHooks,
    id: number,
    options: RequestOptions,
  ) {
    this.id = id
    this.url = options.url
    const { success, fail, complete, ...rest } = options
    this.callbacks = { success, fail, complete }
    this.options = Object.freeze({ ...rest })
  }

  /** Where the task is in its life. */
  get state(): RequestTaskState {
    return this.current
  }

  /** Set when the request was settled without reaching the network. */
  get refusedBecause(): RequestRefusal | undefined {
    return this.refusal
  }

  /** The errMsg the task settled with (`request:ok` or a `request:fail ...`), once it did. */
  get outcome(): string | undefined {
    return this.settledWith
  }

  /** Registers a listener for the response headers; receives `{ header, statusCode, cookies }` once. */
  onHeadersReceived(listener: (res: HeadersReceivedResult) => void): void {
    this.addListener('headersReceived', listener)
  }

  /** Removes one headers listener, or all of them without argument. */
  offHeadersReceived(listener?: (res: HeadersReceivedResult) => void): void {
    this.removeListener('headersReceived', listener)
  }

  /** Registers a chunk listener (only fires with `enableChunked`); receives `{ data: ArrayBuffer }` per chunk. */
  onChunkReceived(listener: (res: ChunkReceivedResult) => void): void {
    this.addListener('chunkReceived', listener)
  }

  /** Removes one chunk listener, or all of them without argument (as documented). */
  offChunkReceived(listener?: (res: ChunkReceivedResult) => void): void {
    this.removeListener('chunkReceived', listener)
  }

  /** Listener counts per task event, for leak assertions. */
  listenerCount(): Record<TaskEvent, number> {
    return { headersReceived: this.listeners.headersReceived.length, chunkReceived: this.listeners.chunkReceived.length }
  }

  /**
   * Aborts the request: `fail` then `complete` with `request:fail abort`, and no header or chunk event after this call
   * (even those already received). Does nothing once the task settled.
   */
  abort(): void {
    this._fail(REQUEST_ERR_MSG.abort, true)
  }

  /** @internal Settles a task refused before any network use. */
  _refuse(reason: RequestRefusal, errMsg: string): void {
    this.refusal = reason
    this._fail(errMsg, false)
  }

  /** @internal Arms the timeout (min of `timeout` and the cap), counted from the call. */
  _armTimeout(): void {
    const t = this.options.timeout
    const ms = typeof t === 'number' && t > 0 ? Math.min(t, this.hooks.capMs) : this.hooks.capMs
    this.capTimer = this.hooks.setTimer(() => {
      this.capTimer = undefined
      this._fail(REQUEST_ERR_MSG.timeout, true)
    }, ms)
  }

  /** @internal Sends the request; called by the simulator when the task gets a slot. */
  _start(): void {
    if (this.current !== 'queued' || this.disposed) return
    this.current = 'active'
    const target = checkUrl(this.url)
    // The simulator checked the URL before giving the task a slot.
    if (typeof target === 'string') return this._refuse('url', REQUEST_ERR_MSG.invalidUrl)
    const method = typeof this.options.method === 'string' && this.options.method !== '' ? this.options.method.toUpperCase() : 'GET'
    const headers: Record<string, string> = {}
    const given = this.options.header
    for (const [key, value] of Object.entries(given !== null && typeof given === 'object' ? given : {})) {
      // "header 中不能设置 Referer": the host sends its own.
      if (key.toLowerCase() === 'referer' || value === undefined) continue
      headers[key] = String(value)
    }
    if (findHeader(headers, 'content-type') === undefined) headers['content-type'] = 'application/json'
    if (this.hooks.referer !== false) headers.referer = this.hooks.referer
    let body: Buffer | undefined
    try {
      body = encodeBody(method, this.options.data, headers, target)
    } catch (err) {
      // e.g. JSON.stringify on a circular object: reported on the task rather than thrown into the caller.
      this._fail(`request:fail ${(err as Error).message}`, false)
      return
    }
    this.send(target, method, headers, body)
  }

  /**
   * @internal Settles the task with a fail. `local` marks terminations decided on the device (abort, timeout,
   * background kill): header and chunk events not yet delivered are dropped, as no callback but fail/complete may
   * follow them.
   */
  _fail(errMsg: string, local: boolean): void {
    if (this.current === 'done' || this.disposed) return
    if (local) this.cutOff = true
    this.finish(errMsg)
    const cbs = this.callbacks
    this.hooks.defer(() => {
      const res: CallbackResult = { errMsg }
      safeCall('request.fail', cbs.fail, res)
      safeCall('request.complete', cbs.complete, res)
    })
  }

  /** @internal Silent teardown for `sim.close()`: no callbacks, listeners dropped. */
  _dispose(): void {
    this.disposed = true
    this.cutOff = true
    this.hooks.clearTimer(this.capTimer)
    this.teardownHttp()
    this.listeners.headersReceived = []
    this.listeners.chunkReceived = []
  }

  private send(target: URL, method: string, headers: Record<string, string>, body: Buffer | undefined): void {
    let req: http.ClientRequest
    try {
      req = http.request({
        agent: this.hooks.agent,
        protocol: target.protocol,
        hostname: target.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: target.port,
        path: `${target.pathname}${target.search}`,
        method,
        headers,
      })
    } catch (err) {
      // e.g. a method that is not an HTTP token, or a header value with control characters.
      this._fail(`request:fail ${(err as Error).message}`, false)
      return
    }
    this.req = req
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (this.req === req) this._fail(fetchErrorMsg(err, this.res !== undefined), false)
    })
    req.on('response', (res) => this.onResponse(req, res, target, method, headers, body))
    req.end(body)
  }

  private onResponse(
    req: http.ClientRequest,
    res: http.IncomingMessage,
    target: URL,
    method: string,
    headers: Record<string, string>,
    body: Buffer | undefined,
  ): void {
    if (this.req !== req || this.current !== 'active') {
      res.resume()
      return
    }
    // The 'error' that follows a destroyed response is reported through 'close' below; never leave it unhandled.
    res.on('error', () => {})
    const status = res.statusCode ?? 0
    const location = res.headers.location
    if (this.options.redirect !== 'manual' && [301, 302, 303, 307, 308].includes(status) && typeof location === 'string') {
      res.resume()
      if (++this.redirects > MAX_REDIRECTS) return this._fail(REQUEST_ERR_MSG.tooManyRedirects, false)
      let next: URL | 'invalid' | 'not-allowed'
      try {
        next = checkUrl(new URL(location, target).href)
      } catch {
        next = 'invalid'
      }
      if (next === 'invalid') return this._fail(REQUEST_ERR_MSG.invalidUrl, false)
      if (next === 'not-allowed') return this._fail(REQUEST_ERR_MSG.notInDomainList, false)
      // Chromium's rule: 303 turns everything but HEAD into GET, 301/302 turn POST into GET; the body goes with it.
      const toGet = (status === 303 && method !== 'HEAD') || ((status === 301 || status === 302) && method === 'POST')
      this.req = undefined
      this.send(next, toGet ? 'GET' : method, headers, toGet ? undefined : body)
      return
    }
    this.res = res
    const { header, cookies } = flattenResponseHeaders(res.rawHeaders, this.hooks.headerCase)
    this.emit('headersReceived', { header, statusCode: status, cookies })
    const chunked = this.options.enableChunked === true
    const arrayBuffer = this.options.responseType === 'arraybuffer'
    const parts: Buffer[] = []
    const cut = chunked ? createChunkSplitter(this.hooks.split, this.id) : undefined
    res.on('data', (buf: Buffer) => {
      if (this.current !== 'active') return
      if (!cut) {
        parts.push(buf)
        return
      }
      for (const piece of cut(buf)) this.emit('chunkReceived', { data: toArrayBuffer(piece) })
    })
    res.on('end', () => {
      if (this.current !== 'active' || this.res !== res) return
      let data: unknown
      if (chunked) data = arrayBuffer ? new ArrayBuffer(0) : ''
      else data = this.decodeBody(Buffer.concat(parts), arrayBuffer)
      this.succeed({ data, statusCode: status, header, cookies, errMsg: REQUEST_ERR_MSG.ok })
    })
    res.on('close', () => {
      if (this.current !== 'active' || this.res !== res || res.complete) return
      const isChunked = /chunked/i.test(String(res.headers['transfer-encoding'] ?? ''))
      this._fail(isChunked ? REQUEST_ERR_MSG.incompleteChunked : REQUEST_ERR_MSG.contentLengthMismatch, false)
    })
  }

  private decodeBody(bytes: Buffer, arrayBuffer: boolean): unknown {
    if (arrayBuffer) return toArrayBuffer(bytes)
    // "小程序会自动对 BOM 头进行过滤（只过滤一个BOM头）".
    const hasBom = bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf
    const text = (hasBom ? bytes.subarray(3) : bytes).toString('utf8')
    const dataType = this.options.dataType ?? 'json'
    if (dataType !== 'json') return text
    try {
      return JSON.parse(text)
    } catch {
      // WeChat hands over the text when it does not parse.
      return text
    }
  }

  private succeed(result: RequestSuccessResult): void {
    if (this.current === 'done' || this.disposed) return
    this.finish(result.errMsg)
    const cbs = this.callbacks
    this.hooks.defer(() => {
      safeCall('request.success', cbs.success, result)
      safeCall('request.complete', cbs.complete, result)
    })
  }

  private finish(errMsg: string): void {
    this.current = 'done'
    this.settledWith = errMsg
    this.hooks.clearTimer(this.capTimer)
    this.capTimer = undefined
    this.teardownHttp()
    if (!this.released) {
      this.released = true
      this.hooks.release(this)
    }
  }

  private teardownHttp(): void {
    const { req, res } = this
    this.req = undefined
    // Keep res: its 'end' may be what settled the task, and a finished response gives its socket back to the agent.
    if (res && !res.complete) res.destroy()
    if (req && !req.destroyed && !(res && res.complete)) req.destroy()
  }

  private addListener(event: TaskEvent, listener: unknown): void {
    if (typeof listener !== 'function' || this.disposed) return
    // Copy-on-write, so a listener that removes itself while an event is delivered is safe.
    this.listeners[event] = [...this.listeners[event], listener as (res: never) => void]
  }

  private removeListener(event: TaskEvent, listener: unknown): void {
    if (listener === undefined || listener === null) {
      this.listeners[event] = []
      return
    }
    this.listeners[event] = this.listeners[event].filter((l) => l !== listener)
  }

  private emit(event: 'headersReceived', res: HeadersReceivedResult): void
  private emit(event: 'chunkReceived', res: ChunkReceivedResult): void
  private emit(event: TaskEvent, res: unknown): void {
    this.hooks.defer(() => {
      if (this.cutOff) return
      for (const listener of this.listeners[event])
        safeCall(`RequestTask.on${event[0].toUpperCase()}${event.slice(1)}`, listener as (r: unknown) => void, res)
    })
  }
}

/** Shared implementation behind both flavours. */
class RequestHost implements RequestSimulator {
  readonly tasks: SimRequestTask[] = []
  readonly wx: WxRequestApi
  readonly uni: UniRequestApi
  private readonly live = new Set<SimRequestTask>()
  private waiting: SimRequestTask[] = []
  private readonly timers = new Set<ReturnType<typeof setTimeout>>()
  private deferred: Array<() => void> = []
  private nextId = 1
  private closed = false
  private isHidden = false
  private isSuspended = false
  private backgroundTimer: ReturnType<typeof setTimeout> | undefined
  private readonly opts: Required<RequestSimulatorOptions>
  private readonly hooks: TaskHostHooks

  constructor(options: RequestSimulatorOptions = {}) {
    this.opts = {
      capMs: options.capMs ?? 60_000,
      maxRequests: options.maxRequests ?? 10,
      overLimit: options.overLimit ?? 'fail',
      killOnHide: options.killOnHide ?? true,
      backgroundKillMs: options.backgroundKillMs ?? 5000,
      split: options.split ?? DEFAULT_SPLIT,
      headerCase: options.headerCase ?? 'as-sent',
      referer: options.referer ?? 'https://servicewechat.com/touristappid/devtools/page-frame.html',
    }
    this.hooks = {
      defer: (fn) => this.defer(fn),
      release: (task) => this.release(task),
      setTimer: (fn, ms) => this.setTimer(fn, ms),
      clearTimer: (timer) => this.clearTimer(timer),
      // Keep-alive, as the native stacks reuse connections; destroyed in close().
      agent: new http.Agent({ keepAlive: true }),
      capMs: this.opts.capMs,
      split: this.opts.split,
      headerCase: this.opts.headerCase,
      referer: this.opts.referer,
    }
    const wxRequest = (options: RequestOptions): SimRequestTask => this.request(options)
    this.wx = { request: wxRequest }
    // uni-mp-weixin: promisify(name, wrapper(name, wx.request)). Arrow functions, since uni copies API functions
    // onto plain objects and callers may invoke them detached.
    this.uni = {
      request: ((options: RequestOptions = {} as RequestOptions) => {
        if (hasCallback(options)) {
          const task = wxRequest({ ...options })
          task.__v_skip = true
          return task
        }
        return new Promise<RequestSuccessResult>((resolve, reject) => {
          wxRequest({ ...options, success: resolve, fail: reject })
        })
      }) as UniRequestApi['request'],
    }
  }

  get hidden(): boolean {
    return this.isHidden
  }

  get suspended(): boolean {
    return this.isSuspended
  }

  hide(): void {
    if (this.closed) return
    const wasHidden = this.isHidden
    this.isHidden = true
    // A repeated hide() must not restart the grace period: it counts from the first one.
    if (!this.opts.killOnHide || wasHidden) return
    this.backgroundTimer = this.setTimer(() => {
      this.backgroundTimer = undefined
      this.isSuspended = true
      for (const task of [...this.waiting, ...this.live]) task._fail(REQUEST_ERR_MSG.interrupted, true)
    }, this.opts.backgroundKillMs)
  }

  show(): void {
    if (this.closed) return
    this.clearTimer(this.backgroundTimer)
    this.backgroundTimer = undefined
    this.isHidden = false
    this.isSuspended = false
  }

  active(): number {
    return this.live.size
  }

  queued(): number {
    return this.waiting.length
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    for (const timer of this.timers) clearTimeout(timer)
    this.timers.clear()
    this.backgroundTimer = undefined
    this.deferred = []
    for (const task of this.tasks) task._dispose()
    this.live.clear()
    this.waiting = []
    this.hooks.agent.destroy()
  }

  private request(options: RequestOptions): SimRequestTask {
    const opts: RequestOptions = options !== null && typeof options === 'object' ? options : ({} as RequestOptions)
    const task = new SimRequestTask(this.hooks, this.nextId++, opts)
    this.tasks.push(task)
    if (this.closed) return task
    if (typeof opts.url !== 'string') {
      task._refuse('parameter', REQUEST_ERR_MSG.parameterError('url', 'String', typeName(opts.url)))
      return task
    }
    if (this.isSuspended) {
      task._refuse('suspended', REQUEST_ERR_MSG.suspended)
      return task
    }
    // Outside the domain list nothing touches the network, and no slot is taken.
    const target = checkUrl(opts.url)
    if (target === 'invalid' || target === 'not-allowed') {
      task._refuse('url', target === 'invalid' ? REQUEST_ERR_MSG.invalidUrl : REQUEST_ERR_MSG.notInDomainList)
      return task
    }
    if (this.live.size >= this.opts.maxRequests) {
      if (this.opts.overLimit === 'fail') {
        task._refuse('limit', REQUEST_ERR_MSG.exceedMaxTaskCount)
        return task
      }
      this.waiting.push(task)
      task._armTimeout()
      return task
    }
    this.live.add(task)
    task._armTimeout()
    task._start()
    return task
  }

  private release(task: SimRequestTask): void {
    const index = this.waiting.indexOf(task)
    if (index >= 0) this.waiting.splice(index, 1)
    if (!this.live.delete(task)) return
    // A freed slot goes to the oldest waiting request (queue mode only ever fills `waiting`).
    while (!this.closed && !this.isSuspended && this.waiting.length > 0 && this.live.size < this.opts.maxRequests) {
      const next = this.waiting.shift() as SimRequestTask
      this.live.add(next)
      next._start()
    }
  }

  private defer(fn: () => void): void {
    if (this.closed) return
    // A macrotask, like a reply over WeChat's JS bridge: never re-entrant. One setImmediate carries every callback
    // queued in the same turn, in order, so headers, chunks and the final callback keep their sequence.
    if (this.deferred.push(fn) > 1) return
    setImmediate(() => {
      const batch = this.deferred
      this.deferred = []
      for (let i = 0; i < batch.length && !this.closed; i++) batch[i]()
    })
  }

  private setTimer(fn: () => void, ms: number): ReturnType<typeof setTimeout> {
    const timer = setTimeout(() => {
      this.timers.delete(timer)
      if (!this.closed) fn()
    }, ms)
    this.timers.add(timer)
    return timer
  }

  private clearTimer(timer: ReturnType<typeof setTimeout> | undefined): void {
    if (timer === undefined) return
    clearTimeout(timer)
    this.timers.delete(timer)
  }
}

/**
 * Creates an isolated request simulator (`wx.request` and `uni.request` over one shared limit, cap and app
 * lifecycle); see {@link RequestSimulatorOptions}. Call `close()` when done.
 */
export function createRequestSimulator(opts?: RequestSimulatorOptions): RequestSimulator {
  return new RequestHost(opts)
}
