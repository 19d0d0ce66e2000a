/**
 * The adapter behind `transports`: picks the transport for each attempt, falls back when one never opens, remembers
 * the winner per host, and probes the earlier ones again (now and then, and on a network change) make-before-break.
 * To the supervisor it is an adapter like any: one link per attempt.
 */
import { fail, refusedForGood, type LongLinkError } from '../errors'
import type { Adapter, Transport, TransportEvents, TransportRequest } from '../transport'
import type { Http } from './http'
import { recall, remember } from './memory'
import type { ResolvedTransports, TransportChange, TransportName } from './options'
import { failOutbox, openSessionLink, type SessionEnv, type SessionLink } from './session'
import { REQUEST_SLACK_MS } from './carriers'
import { httpUrl, withQuery } from './options'

/** An adapter that runs the `transports` list. */
export interface TransportsAdapter extends Adapter {
  readonly transport: TransportName
  /** Set by the client: told whenever `transport` changes. */
  onTransport: ((change: TransportChange) => void) | undefined
  /** The client went offline (no network, app hidden): the failures around it are not the transport's. */
  blocked(): void
  /** The client stopped: ends a session kept for a next attempt. */
  end(): void
}

/** A WebSocket cut abnormally this soon after it opened, before any message, counts as one that never opened. */
const CUT_SOON_MS = 30_000

/** How soon after a fallback the first probe goes (unless `probeInterval` is shorter). */
const SOON_MS = 5000

/**
 * An adapter over `socket` (the platform's WebSocket adapter, when it has one) and `http` for `options.list`.
 * Throws UNSUPPORTED_PLATFORM when this platform can run none of the listed transports.
 */
export function createTransportsAdapter(
  socket: Adapter | undefined,
  http: Http | undefined,
  options: ResolvedTransports,
  url: string,
): TransportsAdapter {
  // What this platform cannot run is left out: a build without sockets goes straight to HTTP.
  const list = options.list.filter((name) => (name === 'websocket' ? socket : http))
  if (!list.length) throw fail('UNSUPPORTED_PLATFORM', `none of ${options.list.join(', ')} can run here`)
  const host = url.replace(/^\w+:\/\/([^/?#]*).*$/, '$1')
  const env: SessionEnv = { http: http!, socket, pollInterval: options.pollInterval, session: undefined }
  let index = Math.max(0, list.indexOf(recall(host)!))
  /** Attempts of the current transport in a row that failed before they opened. */
  let failures = 0
  /** Transports refused for good here (the socket limit, a domain not allowed, an insecure URL) since the last success. */
  const refused = new Set<TransportName>()
  /**
   * The next probe comes soon after a fallback, and after starting on a remembered later transport: the network that
   * refused may have been a passing one.
   */
  let soon = index > 0
  /** Makes the attempt under way count for nothing (the client went offline or to the background). */
  let settleAttempt: (() => void) | undefined
  /** The last attempt's request: its URL (the app's and the auth hook's query) and headers. */
  let lastRequest: TransportRequest | undefined
  /** The open session link, while there is one. */
  let live: SessionLink | undefined
  let probeTimer: ReturnType<typeof setTimeout> | undefined
  let probing = false
  let watching = false
  let networkType: string | undefined

  const adapter: TransportsAdapter = {
    name: (socket || { name: 'http' }).name,
    lifecycle: (socket && socket.lifecycle) || (http && http.lifecycle),
    get transport() {
      return list[index]!
    },
    onTransport: undefined,
    blocked() {
      failures = 0
      if (settleAttempt) settleAttempt()
    },
    recoverable: () => list.some((name) => !refused.has(name)),
    end() {
      clearTimeout(probeTimer)
      failures = 0
      unwatch()
      const s = env.session
      env.session = undefined
      if (!s) return
      // The server is told, after what it has not acknowledged yet (numbered from the oldest, as every POST is), so it
      // need not wait for the session to expire; whether it hears it changes nothing here.
      const items = s.outbox.map((out) => out.item)
      items.push({ close: [1000, ''] })
      const body = JSON.stringify({ seq: s.outbox.length ? s.outbox[0]!.seq : s.outSeq + 1, m: items, ack: s.inSeq })
      failOutbox(s, fail('CLOSED', 'closed by close()'))
      const request = lastRequest || { url, header: undefined }
      env.http.request(
        {
          url: withQuery(httpUrl(request.url), { transport: list[index] === 'websocket' ? 'long-polling' : list[index]!, sid: s.sid }),
          method: 'POST',
          header: { ...request.header, 'Content-Type': 'application/json' },
          body,
          timeout: REQUEST_SLACK_MS,
        },
        () => {},
      )
    },

    open(request, events) {
      clearTimeout(probeTimer)
      live = undefined
      lastRequest = request
      const kind = list[index]!
      let opened = false
      let openedAt = 0
      let heard = false
      let settled = false
      let gone = false
      /** This attempt never opened: two in a row (or one that cannot work here) move on to the next transport. */
      settleAttempt = () => (settled = true)
      const failed = (error?: LongLinkError) => {
        if (settled || opened) return
        settled = true
        // Refused credentials, a session the server forgot, a server answering it is busy or broken (5xx, 429): the
        // server was reached, so none of these says anything about the transport.
        const status = error && error.status
        if (gone || (error && error.code === 'NOT_AUTHORIZED') || (status && (status >= 500 || status === 429))) return
        const final = !!error && refusedForGood(error)
        if (final) refused.add(kind)
        // What this platform cannot do, or refuses for good, is not tried a second time.
        failures += final || (error && error.code === 'NOT_SUPPORTED') ? 2 : 1
        if (failures >= 2) move((index + 1) % list.length, 'fallback')
      }
      const session = kind !== 'websocket' || !!env.session
      /** This transport works here: its failures start over and it is remembered. */
      const proven = () => {
        failures = 0
        refused.clear()
        if (options.list.length > 1) remember(host, kind)
      }
      let link: SessionLink | undefined
      const wrapped: TransportEvents = {
        onOpen() {
          opened = true
          openedAt = Date.now()
          // A session's link proved itself (an answer came through); a plain WebSocket does once a message arrives (or
          // it outlived a cut that would count against it).
          if (session) proven()
          events.onOpen()
          if (link && link === live)
            schedule(soon && options.probeInterval !== false ? Math.min(SOON_MS, options.probeInterval) : options.probeInterval)
          soon = false
        },
        onMessage(data) {
          if (!heard && !session) proven()
          heard = true
          events.onMessage(data)
        },
        onClose(code, reason) {
          live = undefined
          // A WebSocket the network let open and then cut, soon and before a single message, is one that does not work
          // here (a quiet link that a restart ends after minutes is no such thing).
          if (!session && opened && !heard) {
            if (code === 1006 && Date.now() - openedAt < CUT_SOON_MS) opened = false
            else proven()
          }
          failed()
          events.onClose(code, reason)
        },
        onError(error) {
          live = undefined
          failed(error)
          events.onError(error)
        },
      }
      if (!session) {
        const plain = socket!.open(request, wrapped)
        return {
          send: (data) => plain.send(data),
          close(code, reason) {
            failed()
            plain.close(code, reason)
          },
        }
      }
      const started = (link = live = openSessionLink(env, kind, request, wrapped, () => (gone = true)))
      watch()
      const transport: Transport = {
        send: started.send,
        close(code, reason) {
          failed()
          live = undefined
          started.close(code, reason)
        },
        detach() {
          failed()
          live = undefined
          started.detach()
        },
      }
      return transport
    },
  }

  function move(to: number, reason: TransportChange['reason']): void {
    const from = list[index]!
    index = to
    failures = 0
    soon = reason === 'fallback'
    if (list[to] !== from && adapter.onTransport) adapter.onTransport({ from, to: list[to]!, reason })
  }

  function schedule(delay: number | false): void {
    clearTimeout(probeTimer)
    if (delay !== false && index > 0) probeTimer = setTimeout(probe, delay)
  }

  /** Tries the transports before the current one, first to last; the first that carries the session stays. */
  async function probe(): Promise<void> {
    const link = live
    if (probing || !link || index === 0) return
    probing = true
    try {
      for (let k = 0; k < index && link === live; k++) {
        if (await link.probe(list[k]!)) {
          if (link !== live) return
          move(k, 'upgrade')
          if (options.list.length > 1) remember(host, list[k]!)
          break
        }
      }
    } finally {
      probing = false
    }
    if (link === live) schedule(options.probeInterval)
  }

  /** A change to another live network is when a blocked transport most likely works again. */
  function onNetwork(res: { isConnected?: boolean; networkType?: string } | undefined): void {
    if (!watching) return
    const type = res && res.isConnected !== false ? String(res.networkType) : 'none'
    const changed = type !== networkType && type !== 'none'
    networkType = type
    if (changed && live && index > 0) void probe()
  }

  /** Listens for network changes while a session runs (removed when the client stops). */
  function watch(): void {
    const host = adapter.lifecycle
    if (watching || !host || typeof host.onNetworkStatusChange !== 'function') return
    watching = true
    try {
      host.onNetworkStatusChange(onNetwork)
    } catch {
      // A host may refuse the listener: probes then run on their timer only.
    }
  }

  function unwatch(): void {
    const host = adapter.lifecycle
    if (!watching || !host) return
    watching = false
    try {
      if (typeof host.offNetworkStatusChange === 'function') host.offNetworkStatusChange(onNetwork)
    } catch {
      // See watch: `watching` already turned the listener into a no-op.
    }
  }

  return adapter
}
