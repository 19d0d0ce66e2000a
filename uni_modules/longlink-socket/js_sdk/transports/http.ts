/**
 * Plain HTTP requests (a whole body, as text) for the long- and short-polling transports and every POST, over the
 * platform's `request` (wx, uni, my, tt, or a host object) or `fetch` (H5). Streaming requests (SSE) come from
 * `resolveStreamTransport`, for the same platform.
 */
import { fail, platformError, type LongLinkError } from '../errors'
import type { LifecycleHost } from '../transport'
import { resolveStreamTransport } from '../sse/platform'
import { abortTask, type StreamTransport } from '../sse/stream'
import type { EventSourcePlatform, RequestHost } from '../sse/types'
// #ifndef MP
import { findFetch, type FetchLike } from '../sse/fetch'
// #endif

declare const wx: RequestHost | undefined
declare const uni: RequestHost | undefined

/** One request. */
export interface HttpRequest {
  url: string
  method: 'GET' | 'POST'
  header: Record<string, string> | undefined
  body?: string | undefined
  /** Deadline (ms): the request is aborted and fails with TIMEOUT after it. */
  timeout: number
}

/** What a request brings back: any status (an error status is still an answer) and the body as text. */
export interface HttpResponse {
  status: number
  body: string
}

/** Requests on one platform. */
export interface Http {
  /** Starts one request; `done` is called once, with an error or the response. Returns what aborts it (no call after). */
  request(request: HttpRequest, done: (error: LongLinkError | undefined, response?: HttpResponse) => void): () => void
  /** Streaming requests on the same platform (the SSE transport). */
  readonly stream: StreamTransport
  readonly lifecycle?: LifecycleHost | undefined
}

/** Requests over a `wx.request`-shaped API (Alipay's `my.request` shape too: `headers`, `status`). */
function hostRequests(host: RequestHost, name: string): Http['request'] {
  return (request, done) => {
    let finished = false
    let task: { abort?(): void } | undefined
    const finish = (error: LongLinkError | undefined, response?: HttpResponse) => {
      if (finished) return
      finished = true
      clearTimeout(timer)
      done(error, response)
    }
    const abort = () => abortTask(task)
    const timer = setTimeout(() => (abort(), finish(fail('TIMEOUT', `no answer within ${request.timeout} ms`))), request.timeout)
    try {
      task = host.request({
        url: request.url,
        method: request.method,
        header: request.header,
        headers: request.header,
        data: request.body,
        // The platform's own deadline a little later than ours, so ours is the one that speaks.
        timeout: request.timeout + 1000,
        // Not 'json': the packet is parsed here, and a host must not turn a body into something else first.
        dataType: 'text',
        responseType: 'text',
        success: (res: { statusCode?: number; status?: number; data?: unknown }) => {
          const data = res.data
          finish(undefined, { status: Number(res.statusCode ?? res.status), body: typeof data === 'string' ? data : JSON.stringify(data ?? '') })
        },
        fail: (res: unknown) => finish(platformError(res, 'CONNECT_FAILED', `${name}.request failed`, request.url)),
      }) as typeof task
    } catch (error) {
      finish(platformError(error, 'CONNECT_FAILED', `${name}.request failed`, request.url))
    }
    return () => {
      finished = true
      clearTimeout(timer)
      abort()
    }
  }
}

// #ifndef MP
/** Requests over `fetch` (H5, Node). */
function fetchRequests(fetchImpl: FetchLike): Http['request'] {
  type Controller = { signal: unknown; abort(): void }
  return (request, done) => {
    const controller = new (globalThis as unknown as { AbortController: new () => Controller }).AbortController()
    let finished = false
    const finish = (error: LongLinkError | undefined, response?: HttpResponse) => {
      if (finished) return
      finished = true
      clearTimeout(timer)
      done(error, response)
    }
    const timer = setTimeout(() => (controller.abort(), finish(fail('TIMEOUT', `no answer within ${request.timeout} ms`))), request.timeout)
    fetchImpl(request.url, { method: request.method, headers: request.header, body: request.body, cache: 'no-store', signal: controller.signal })
      .then((response) =>
        (response as unknown as { text(): Promise<string> }).text().then((body) => finish(undefined, { status: response.status, body })),
      )
      .catch((error) => finish(platformError(error, 'CONNECT_FAILED', 'fetch failed', request.url)))
    return () => {
      finished = true
      clearTimeout(timer)
      controller.abort()
    }
  }
}
// #endif

/** `host` when it has a `request` function. */
function withRequest(host: RequestHost | undefined): RequestHost | undefined {
  return host && typeof host.request === 'function' ? host : undefined
}

/**
 * The requests of a platform, chosen as the SSE source chooses its stream: a host object with `request`; `wx` in a
 * WeChat mini-program; `fetch` in a browser; `uni.request` elsewhere. Undefined when there is none.
 */
export function resolveHttp(platform: unknown): Http | undefined {
  const host =
    platform && typeof platform === 'object' && typeof (platform as RequestHost).request === 'function' ? (platform as RequestHost) : undefined
  const name = typeof platform === 'string' ? platform : 'auto'
  let stream: StreamTransport
  try {
    stream = resolveStreamTransport((host || (name === 'uni' || name === 'wx' || name === 'web' ? name : 'auto')) as EventSourcePlatform)
  } catch {
    return undefined
  }
  if (host) return { request: hostRequests(host, 'custom'), stream, lifecycle: host }
  // Through a parameter: uni-h5 rewrites a literal `wx.request` into its own `uni.request`, and H5's `wx` has none.
  const wxHost = name !== 'web' ? withRequest(typeof wx !== 'undefined' ? wx : undefined) : undefined
  if (wxHost) return { request: hostRequests(wxHost, 'wx'), stream, lifecycle: wxHost }
  // #ifndef MP
  const fetchImpl = name !== 'wx' ? findFetch() : undefined
  if (fetchImpl) return { request: fetchRequests(fetchImpl), stream, lifecycle: stream.lifecycle }
  // #endif
  // uni-h5 only keeps the uni APIs it sees named in source: `uni.request` is called by name here.
  if (name !== 'wx' && name !== 'web' && typeof uni !== 'undefined' && uni && typeof uni.request === 'function') {
    return { request: hostRequests({ request: (o) => uni!.request(o) }, 'uni'), stream, lifecycle: uni }
  }
  return undefined
}
