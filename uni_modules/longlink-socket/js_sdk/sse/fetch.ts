/**
 * The browser's transport: `fetch` with a body reader. Unlike `EventSource` it sends headers and POST bodies. (uni-h5's
 * own `request` with `enableChunked` times out the whole stream and never reports reader errors, so H5 uses `fetch`.)
 */
import { fail, messageOf } from '../errors'
import type { LifecycleHost } from '../transport'
import type { StreamTransport } from './stream'

interface ReaderLike {
  read(): Promise<{ done: boolean; value?: Uint8Array }>
  cancel(): Promise<void>
}
interface ResponseLike {
  status: number
  headers: { forEach(cb: (value: string, name: string) => void): void }
  body: { getReader?(): ReaderLike } | null
}
interface AbortControllerLike {
  signal: unknown
  abort(): void
}
/** The standard `fetch`, as far as this transport uses it. */
export type FetchLike = (url: string, init: Record<string, unknown>) => Promise<ResponseLike>

/** This runtime's `fetch`, when it has one (and AbortController, to end a stream). */
export function findFetch(): FetchLike | undefined {
  const g = globalThis as { fetch?: FetchLike; AbortController?: unknown }
  return typeof g.fetch === 'function' && typeof g.AbortController === 'function' ? g.fetch.bind(globalThis) : undefined
}

/** A transport over `fetch` (H5, or Node 18+ in tests). */
export function createFetchTransport(fetchImpl: FetchLike, lifecycle?: LifecycleHost): StreamTransport {
  return {
    name: 'web',
    lifecycle,
    open(request, callbacks) {
      const controller = new (globalThis as unknown as { AbortController: new () => AbortControllerLike }).AbortController()
      let done = false
      let reader: ReaderLike | undefined
      const failed = (error: unknown) => {
        if (done) return
        done = true
        const page = (globalThis as { location?: { protocol?: string } }).location
        callbacks.fail(
          error && (error as { code?: unknown }).code === 'NOT_SUPPORTED'
            ? (error as never)
            : // A browser blocks http:// from an HTTPS page without saying why ("Failed to fetch"): name the cause.
              page && page.protocol === 'https:' && /^http:/i.test(request.url)
              ? fail('INSECURE_URL', `fetch failed: ${messageOf(error)} (an HTTPS page cannot read http://: use https://)`, error)
              : fail('CONNECT_FAILED', `fetch failed: ${messageOf(error)}`, error),
        )
      }
      // Each read starts a new chain (not returned into the last one): a long stream must not hold every read.
      const pump = (): void =>
        void reader!.read().then(({ done: ended, value }) => {
          if (done) return
          if (ended) {
            done = true
            return callbacks.end()
          }
          if (value && value.byteLength) callbacks.chunk(value)
          pump()
        }, failed)
      fetchImpl(request.url, {
        method: request.method,
        headers: request.header,
        body: request.body,
        cache: 'no-store',
        signal: controller.signal,
      })
        .then((response) => {
          if (done) return
          const headers: Record<string, string> = {}
          response.headers.forEach((value, name) => (headers[name.toLowerCase()] = value))
          callbacks.headers(response.status, headers)
          if (done) return
          if (!response.body || typeof response.body.getReader !== 'function')
            throw fail('NOT_SUPPORTED', "this browser's fetch cannot stream a response body")
          reader = response.body.getReader()
          pump()
        })
        .catch(failed)
      return () => {
        done = true
        try {
          controller.abort()
        } catch {
          // Nothing to abort any more.
        }
      }
    },
  }
}
