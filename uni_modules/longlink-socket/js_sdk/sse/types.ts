import type { LongLinkError } from '../errors'
import type { LifecycleHost } from '../transport'
import type { AuthContext, AuthResult, CloseReason, ConnectionState, Logger, ReconnectOptions, ReconnectingEvent, StateChange } from '../types'
import type { SseEvent } from './parser'

export type { SseEvent } from './parser'

/**
 * A host with a request function of the `wx.request` shape (options with callbacks in, a RequestTask out), plus the
 * lifecycle APIs it has. `wx`, `uni`, a test simulator or your own wrapper.
 */
export interface RequestHost extends LifecycleHost {
  request(options: Record<string, unknown>): unknown
}

/** Which request API streams the events: a name, or a host with a `wx.request`-shaped `request`. */
export type EventSourcePlatform = 'auto' | 'uni' | 'wx' | 'web' | RequestHost

/** Options of {@link createEventSource}. Every one is optional. */
export interface EventSourceOptions {
  /** Default `'auto'`: `wx.request` in a WeChat mini-program, `fetch` in a browser, else `uni.request`. */
  platform?: EventSourcePlatform | undefined
  /** `'GET'` (default) or `'POST'`. */
  method?: 'GET' | 'POST' | undefined
  /** Request headers (strings). `Accept`, `Cache-Control` and `Last-Event-ID` are set by the source. */
  headers?: Record<string, string> | undefined
  /**
   * The request body (POST): a string as is (`text/plain` unless `headers` name a type), or a plain object or array
   * as JSON (`application/json`). The same body is sent again on every reconnect.
   */
  body?: string | Record<string, unknown> | unknown[] | undefined
  /** Called before every attempt; may return fresh headers and query parameters (for example a refreshed token). */
  auth?: ((context: AuthContext) => AuthResult | void | Promise<AuthResult | void>) | undefined
  /** The id to resume after on the first request (sent as `Last-Event-ID`). Default none. */
  lastEventId?: string | undefined
  /**
   * Reconnect policy (the core's shape: `min`, `max`, `factor`, `jitter`, `maxRetries`, `minUptime`), or `false` for
   * a one-shot stream that ends with `close` when the server ends the response. A server's `retry:` field replaces
   * `min`, the base delay.
   */
  reconnect?: ReconnectOptions | false | undefined
  /** How long (ms) one attempt may take to get the response headers. Default 10000. */
  connectTimeout?: number | undefined
  /**
   * An open stream that delivers no byte at all (comments included) for this long (ms) is dead: it is replaced,
   * reason `idle-timeout` (a one-shot stream stops with TIMEOUT). Keep it above the server's keep-alive interval.
   * Default 45000; `false` turns it off.
   */
  idleTimeout?: number | false | undefined
  /**
   * A healthy stream is ended and resumed (from the last event id) after this long (ms), before the platform cuts the
   * request. Default 50000 on mini-program platforms (their cap is 60 s), off (`false`) on H5 and for a one-shot
   * stream (`reconnect: false`: resuming it would send its request again).
   */
  maxStreamMs?: number | false | undefined
  /** Events the async iterator may hold for a slow consumer before it fails with QUEUE_FULL. Default 1000. */
  queue?: { max?: number | undefined } | undefined
  /** Receives debug lines; tokens and passwords are redacted. */
  logger?: Logger | undefined
}

/** The `open` event: a stream is open (the answer was 2xx `text/event-stream`). */
export interface EventSourceOpenEvent {
  /** The HTTP status (2xx). */
  status: number
  /** The response headers, names lower-cased. */
  headers: Record<string, string>
  /** True for every stream after the first one (a reconnect or a rotation). */
  reconnected: boolean
}

/**
 * The `close` event. Emitted when an open stream ends (why in `reason`), when `close()` is called (`intentional`),
 * and when an HTTP answer stops the source for good: 204, or a status that is not retried (`status` set).
 */
export interface EventSourceCloseEvent {
  reason: CloseReason
  /** True only after `close()`. */
  intentional: boolean
  /** The HTTP status, when an answer ended the source. */
  status?: number
  /** What ended it, in words. */
  message: string
}

/** The lifecycle events; their names are reserved (a server event named alike reaches only the iterator). */
export interface EventSourceLifecycleEvents {
  open: EventSourceOpenEvent
  close: EventSourceCloseEvent
  error: LongLinkError
  reconnecting: ReconnectingEvent
  state: StateChange
}

/** The lifecycle event names. */
export type EventSourceLifecycleName = keyof EventSourceLifecycleEvents

/** Figures of a source over its life. */
export interface EventSourceStats {
  /** Events dispatched (every type). */
  events: number
  /** Response body bytes received (comments included). */
  bytes: number
  /** Streams opened after a stream was lost (rotations before the platform's cap are not counted). */
  reconnects: number
}

/**
 * An event source. It starts by itself (its first request goes out after the current turn, so handlers attached
 * right after creation miss nothing), resumes after every loss from the last event id, and stops only on `close()`,
 * an answer that says stop (204, a 4xx other than 408/429, a wrong content type), `NOT_SUPPORTED`, the end of a
 * one-shot stream (`reconnect: false`), or `reconnect.maxRetries` failures in a row.
 */
export interface EventSource extends AsyncIterable<SseEvent> {
  /** The core's states: `idle` before the first request, `connecting`, `open`, `reconnecting`, `offline`, `closing`, `closed`. */
  readonly state: ConnectionState
  /** As in the browser: 0 connecting (or waiting to), 1 open, 2 closed. */
  readonly readyState: 0 | 1 | 2
  /** The last event id seen (committed when a block is dispatched, even one with no data); '' when none. */
  readonly lastEventId: string
  /** Events, bytes and reconnects; a fresh object on every read. */
  readonly stats: EventSourceStats
  /** The request API in use: `wx`, `uni`, `web`, `custom`. */
  readonly platform: string
  /**
   * Adds a handler; returns the function that removes it. `type` is a lifecycle event (`open`, `close`, `error`,
   * `reconnecting`, `state`), `'message'` (events with no `event` field) or any event name the server sends.
   */
  on<K extends EventSourceLifecycleName>(type: K, handler: (payload: EventSourceLifecycleEvents[K]) => void): () => void
  on(type: string, handler: (event: SseEvent) => void): () => void
  /** Removes one handler (or every handler of `type` when none is given). */
  off(type: string, handler?: (payload: never) => void): void
  /**
   * Resolves once a stream is open (at once when one is). Rejects with the error that stopped the source (CLOSED after
   * `close()`). It never restarts a stopped source.
   */
  open(): Promise<void>
  /** Closes for good (intentional): no reconnect follows, iterators end. Resolves once closed. */
  close(): Promise<void>
  /**
   * Every dispatched event of every type, in order, from the moment the iterator is made until the source stops:
   * it ends after `close()`, a 204 or the end of a one-shot stream, and throws the error that stopped the source
   * otherwise. A consumer that falls `queue.max` events behind gets QUEUE_FULL after the events it holds (nothing is
   * dropped silently); breaking out of the loop only detaches that iterator.
   */
  [Symbol.asyncIterator](): AsyncIterator<SseEvent>
}
