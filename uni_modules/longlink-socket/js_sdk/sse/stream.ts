/**
 * One HTTP response read as a stream of bytes, behind one shape for every platform: a request API of the `wx.request`
 * shape with `enableChunked` (mini-programs, uni-app), or `fetch` with a body reader (browsers, in `fetch.ts`).
 */
import { fail, platformError, type LongLinkError } from '../errors'
import type { LifecycleHost } from '../transport'
import type { RequestHost } from './types'

/** One attempt's request. */
export interface StreamRequest {
  url: string
  method: string
  header: Record<string, string>
  body: string | undefined
  /** The platform's own request timeout (ms), when the source wants one. */
  timeout: number | undefined
}

/** What a stream reports, in this order: `headers` once, then `chunk`s, then `end` or `fail` (or `fail` alone). */
export interface StreamCallbacks {
  /** The status line and headers arrived; names are lower-cased. */
  headers(status: number, headers: Record<string, string>): void
  chunk(bytes: Uint8Array): void
  /** The response ended normally. */
  end(): void
  fail(error: LongLinkError): void
}

/** A way to make streaming requests. */
export interface StreamTransport {
  /** `wx`, `uni`, `web`, `custom`. */
  readonly name: string
  readonly lifecycle?: LifecycleHost | undefined
  /** Starts one request; returns what aborts it. Failures arrive through `fail`, never as a throw. */
  open(request: StreamRequest, callbacks: StreamCallbacks): () => void
}

interface RequestTaskLike {
  abort?(): void
  onChunkReceived?(cb: (res: { data?: unknown }) => void): void
  onHeadersReceived?(cb: (res: { statusCode?: number; header?: Record<string, unknown> }) => void): void
}

const toString = Object.prototype.toString

/** Aborts a request task; an aborted or finished one may refuse, and is forgotten either way. */
export function abortTask(task: { abort?(): void } | undefined): void {
  try {
    if (task && typeof task.abort === 'function') task.abort()
  } catch {
    // See above.
  }
}

/** Header names lower-cased, values as strings (hosts differ in the case they hand names over in). */
export function lowerCaseHeaders(header: Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  for (const name in header || {}) out[name.toLowerCase()] = String(header![name])
  return out
}

/** A chunk's bytes: an ArrayBuffer per the docs, a Uint8Array with an altered prototype in WeChat DevTools. */
function bytesOf(data: unknown): Uint8Array {
  if (toString.call(data) === '[object ArrayBuffer]') return new Uint8Array(data as ArrayBuffer)
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  throw fail('NOT_SUPPORTED', `chunks are ${toString.call(data)}, not bytes`)
}

/**
 * A transport over `host.request` with `enableChunked: true` and `responseType: 'arraybuffer'`: the body arrives
 * through the task's `onChunkReceived`, the status through `onHeadersReceived`. A host whose task has no
 * `onChunkReceived` or `onHeadersReceived` cannot stream: the attempt fails with NOT_SUPPORTED (the request is aborted).
 */
export function createRequestTransport(host: RequestHost, name: string): StreamTransport {
  return {
    name,
    lifecycle: host,
    open(request, callbacks) {
      let task: RequestTaskLike | undefined
      let done = false
      let heard = false
      const finish = (error?: LongLinkError) => {
        if (done) return
        done = true
        error ? callbacks.fail(error) : callbacks.end()
      }
      const headers = (res: { statusCode?: number; header?: Record<string, unknown> } | undefined) => {
        if (heard || done || !res) return
        const header = lowerCaseHeaders(res.header)
        let status = res.statusCode
        // WeChat DevTools leaves the status out of onHeadersReceived: an event stream is taken as 200, anything else
        // waits for the status that `success` brings.
        if (typeof status !== 'number') {
          if (!/^text\/event-stream/i.test(header['content-type'] || '')) return
          status = 200
        }
        heard = true
        callbacks.headers(status, header)
      }
      /** The platform's `fail`, or a throw from `request` itself. */
      // A domain outside the request allow-list, http:// where https:// is required and TLS failures get their codes.
      const failed = (res: unknown) => finish(platformError(res, 'CONNECT_FAILED', `${name}.request failed`, request.url))
      const cancel = () => abortTask(task)
      try {
        task = host.request({
          url: request.url,
          method: request.method,
          header: request.header,
          data: request.body,
          timeout: request.timeout,
          enableChunked: true,
          responseType: 'arraybuffer',
          // With enableChunked the body came through the chunks; the result still carries the status (DevTools leaves it
          // out of onHeadersReceived). A macrotask later: a host that calls `success` before the last onChunkReceived
          // must not lose that chunk.
          success: (res: { statusCode?: number; header?: Record<string, unknown> }) => void setTimeout(() => (headers(res), finish())),
          fail: failed,
        }) as RequestTaskLike | undefined
      } catch (error) {
        failed(error)
      }
      // Both are needed: body bytes that came before the status could not be told from an error page's.
      if (!done && (!task || typeof task.onChunkReceived !== 'function' || typeof task.onHeadersReceived !== 'function')) {
        cancel()
        // App without enableChunked, Alipay and Douyin: long polling is what works there.
        finish(fail('NOT_SUPPORTED', `${name}.request cannot stream here: its task has no onChunkReceived/onHeadersReceived`))
      }
      if (done) return cancel
      task!.onHeadersReceived!(headers)
      task!.onChunkReceived!((res) => {
        if (done) return
        let bytes: Uint8Array
        try {
          bytes = bytesOf(res && res.data)
        } catch (error) {
          cancel()
          return finish(error as LongLinkError)
        }
        // Before the status only an error page's body can come (an event stream is taken as 200 at once).
        if (heard) callbacks.chunk(bytes)
      })
      return () => {
        done = true
        cancel()
      }
    },
  }
}
