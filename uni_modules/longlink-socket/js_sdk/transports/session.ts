/**
 * A session link: one attempt's link for the supervisor, over a LongLink session (docs/session-protocol.md). The
 * session (its id, both cursors, the messages the server has not acknowledged) outlives the link: a link dropped by
 * the supervisor (a heartbeat timeout) is resumed by the next one, with nothing lost or repeated. A carrier may be
 * replaced under a running link, make-before-break (`probe`), without the app seeing anything.
 */
import { fail, messageOf, type LongLinkError } from '../errors'
import { toWire, utf8Length } from '../core/bytes'
import type { Adapter, Transport, TransportEvents, TransportRequest } from '../transport'
import { startCarrier, REQUEST_SLACK_MS, statusError, type Carrier, type CarrierHooks } from './carriers'
import { fromBase64, toItem, type Item, type Packet } from './codec'
import type { Http } from './http'
import { httpUrl, withQuery, type TransportName } from './options'

/** A client message the server has not acknowledged yet. */
interface Outgoing {
  seq: number
  item: Item
  /** Its `send()` promise (none for a close item). */
  settle?: [resolve: () => void, reject: (error: LongLinkError) => void]
}

/** What the server said when the session opened. */
interface SessionInfo {
  sid: string
  hold: number
  maxRequestBytes: number
}

/** A session, kept across links until it is gone or closed. */
export interface Session extends SessionInfo {
  /** The last carrier number used. */
  c: number
  /** The last server message delivered. */
  inSeq: number
  /** The last number given to a client message. */
  outSeq: number
  outbox: Outgoing[]
}

/** What every link of one connection shares. */
export interface SessionEnv {
  http: Http
  socket: Adapter | undefined
  pollInterval: number
  session: Session | undefined
}

/** A link the supervisor holds. */
export interface SessionLink extends Transport {
  /** Lets go of the link and keeps the session for the next one. */
  detach(): void
  /** Tries `kind` as the session's carrier, make-before-break; resolves true once it carries it. */
  probe(kind: TransportName): Promise<boolean>
}

/** How long a probe may take to prove itself. */
const PROBE_MS = 10_000
/** How long received messages may wait for their acknowledgement on a stream or a WebSocket. */
const ACK_MS = 1000
/** Messages received after which the acknowledgement goes at once. */
const ACK_EVERY = 64
/** Room kept in a POST body for the envelope. */
const ENVELOPE_BYTES = 256

/** The bytes an item takes in a body: its JSON (quotes and escapes included) and a separator. */
function itemBytes(item: Item): number {
  return typeof item === 'string' ? utf8Length(JSON.stringify(item)) + 1 : JSON.stringify(item).length + 1
}

/** Rejects every waiting send of `session` with `error`. */
export function failOutbox(session: Session, error: LongLinkError): void {
  for (const out of session.outbox.splice(0)) if (out.settle) out.settle[1](error)
}

/**
 * Opens a link for `kind`: a new session first when `env` has none (the HTTP transports only), then a carrier.
 * `gone` is told when the server no longer knows the session (so the failure is not held against the transport).
 */
export function openSessionLink(
  env: SessionEnv,
  kind: TransportName,
  request: TransportRequest,
  events: TransportEvents,
  gone: () => void,
): SessionLink {
  const base = httpUrl(request.url)
  /** The link is over (closed, detached, failed or lost): nothing more reaches the supervisor. */
  let over = false
  let opened = false
  let active: Slot | undefined
  let probing: Slot | undefined
  let abortHandshake: (() => void) | undefined
  let posting: (() => void) | undefined
  let postTimer: ReturnType<typeof setTimeout> | undefined
  let postErrors = 0
  let ackTimer: ReturnType<typeof setTimeout> | undefined
  /** The cursor last sent to the server. */
  let ackSent = 0
  /** The last client message written to the current WebSocket carrier. */
  let wrote = 0
  let flushQueued = false

  /** A carrier and what is known of it. */
  interface Slot {
    kind: TransportName
    carrier?: Carrier
    ready: boolean
    /** Stopped by a probe's claim (409): started again if the probe fails. */
    paused?: boolean
  }

  function launch(slotKind: TransportName, role: 'active' | 'probe'): Slot {
    const s = env.session!
    const slot: Slot = { kind: slotKind, ready: false }
    if (role === 'active') active = slot
    else probing = slot
    const hooks: CarrierHooks = {
      ready: () => (slot === probing ? promote(slot) : slot === active && activeReady(slot)),
      packet: (packet) => (slot === active || slot === probing) && receive(packet),
      fail: (error) => (slot === probing ? probeFailed() : slot === active && activeFailed(error)),
      gone: () => (slot === active || slot === probing) && sessionGone(),
      stale() {
        if (slot === probing) probeFailed()
        // A probe claimed the session: this carrier waits for its outcome.
        else if (slot === active && probing) slot.paused = true
        else if (slot === active) activeFailed(fail('CONNECT_FAILED', 'another carrier took the session over'))
      },
    }
    const carrier = startCarrier(
      slotKind,
      {
        http: env.http,
        socket: env.socket,
        base,
        request,
        sid: s.sid,
        c: ++s.c,
        // Every down request carries the cursor too.
        ack: () => (ackSent = Math.max(ackSent, s.inSeq)),
        hold: s.hold,
        pollInterval: env.pollInterval,
      },
      hooks,
    )
    slot.carrier = carrier
    // It may have failed while starting, and been replaced already.
    if (slot !== active && slot !== probing) carrier.stop()
    return slot
  }

  function activeReady(slot: Slot): void {
    slot.ready = true
    wrote = 0
    if (!opened) {
      opened = true
      events.onOpen()
    }
    flush()
  }

  function activeFailed(error: LongLinkError): void {
    active = undefined
    // Before open the attempt failed; after, the link is lost and the next one resumes the session.
    if (opened) end(() => events.onClose(1006, `${kindOf()} lost: ${error.message}`))
    else end(() => events.onError(error))
  }

  function kindOf(): string {
    return active ? active.kind : kind
  }

  /** A probe proved itself: it carries the session now; the carrier before it stops. */
  function promote(slot: Slot): void {
    const old = active
    probing = undefined
    clearTimeout(probeTimer)
    slot.ready = true
    active = slot
    if (old && old.carrier) old.carrier.stop()
    probeDone && probeDone(true)
    wrote = 0
    flush()
  }

  let probeDone: ((ok: boolean) => void) | undefined
  let probeTimer: ReturnType<typeof setTimeout> | undefined

  function probeFailed(): void {
    const slot = probing
    clearTimeout(probeTimer)
    if (!slot) return
    probing = undefined
    if (slot.carrier) slot.carrier.stop()
    probeDone && probeDone(false)
    // The probe may have claimed the session from the running carrier (an HTTP probe claims it when it starts): that
    // one starts again with a newer number. An HTTP carrier may take sends at once (POSTs); a WebSocket only once its
    // hello came.
    if (!over && active && (active.paused || slot.kind !== 'websocket')) {
      if (active.carrier) active.carrier.stop()
      const wasReady = active.ready && active.kind !== 'websocket'
      const next = launch(active.kind, 'active')
      if (next === active) next.ready = next.ready || wasReady
    }
  }

  function sessionGone(): void {
    const s = env.session
    env.session = undefined
    gone()
    if (s) failOutbox(s, fail('SEND_FAILED', 'the server ended the session before it acknowledged this message'))
    if (opened) end(() => events.onClose(4410, 'session gone'))
    else end(() => events.onError(fail('CONNECT_FAILED', 'session gone')))
  }

  /** Takes a packet from any carrier: acknowledgements, then messages in order, each once. */
  function receive(packet: Packet): void {
    const s = env.session
    if (!s || over) return
    if (typeof packet.ack === 'number') settle(s, packet.ack)
    if (!packet.m) return
    let seq = packet.seq!
    for (const item of packet.m) {
      if (seq > s.inSeq + 1) return activeFailed(fail('CONNECT_FAILED', `message ${seq} came before ${s.inSeq + 1}`))
      if (seq === s.inSeq + 1) {
        s.inSeq = seq
        deliver(s, item)
        if (over) return
      }
      seq++
    }
    if (active && (active.kind === 'sse' || active.kind === 'websocket')) {
      if (s.inSeq - ackSent >= ACK_EVERY) sendAck()
      else if (!ackTimer) ackTimer = setTimeout(sendAck, ACK_MS)
    }
  }

  function deliver(s: Session, item: Item): void {
    if (typeof item === 'string') return events.onMessage(item)
    if (item && typeof (item as { b?: unknown }).b === 'string') {
      let bytes: ArrayBuffer
      try {
        bytes = fromBase64((item as { b: string }).b)
      } catch (error) {
        return activeFailed(fail('CONNECT_FAILED', `bad bytes in message ${s.inSeq}: ${messageOf(error)}`))
      }
      return events.onMessage(bytes)
    }
    const close = item && (item as { close?: unknown }).close
    if (Array.isArray(close)) {
      // The server closed the connection: say we heard it (so it can forget the session), then report the close.
      env.session = undefined
      const carrier = active && active.carrier
      if (carrier && carrier.send) carrier.send(JSON.stringify({ ack: s.inSeq }))
      else post(s, [], s.inSeq)
      failOutbox(s, fail('SEND_FAILED', 'the server closed the connection before it acknowledged this message'))
      return end(() => events.onClose(Number(close[0]) || 1000, String(close[1] ?? '')), true)
    }
  }

  /** The server's cursor in a POST's answer; -1 (nothing acknowledged: the messages go again) without one. */
  function ackOf(body: string): number {
    try {
      const ack = (JSON.parse(body) as { ack?: unknown }).ack
      return typeof ack === 'number' ? ack : -1
    } catch {
      return -1
    }
  }

  function settle(s: Session, ack: number): void {
    while (s.outbox.length && s.outbox[0]!.seq <= ack) {
      const out = s.outbox.shift()!
      if (out.settle) out.settle[0]()
    }
  }

  function sendAck(): void {
    clearTimeout(ackTimer)
    ackTimer = undefined
    const s = env.session
    if (!s || over || !active || s.inSeq === ackSent) return
    if (active.carrier && active.carrier.send) {
      ackSent = s.inSeq
      active.carrier.send(JSON.stringify({ ack: s.inSeq }))
    } else flush(true)
  }

  function queueFlush(): void {
    if (flushQueued) return
    flushQueued = true
    // Sends made in one turn leave together.
    Promise.resolve().then(() => {
      flushQueued = false
      flush()
    })
  }

  /** Sends what the server has not acknowledged: on the WebSocket what it has not had yet, else by POST. */
  function flush(ackOnly = false): void {
    const s = env.session
    if (!s || over || !active || !active.ready) return
    const carrier = active.carrier
    if (carrier && carrier.send) {
      const fresh = s.outbox.filter((out) => out.seq > wrote)
      if (!fresh.length) return
      wrote = fresh[fresh.length - 1]!.seq
      ackSent = s.inSeq
      return carrier.send(JSON.stringify({ seq: fresh[0]!.seq, m: fresh.map((out) => out.item), ack: s.inSeq }))
    }
    if (posting || (!s.outbox.length && (!ackOnly || s.inSeq === ackSent))) return
    post(s, s.outbox, s.inSeq)
  }

  /**
   * One POST in flight at a time, carrying every unacknowledged message that fits (from the oldest: a repeated one is
   * acknowledged, not applied twice) and the cursor.
   */
  function post(s: Session, outbox: Outgoing[], ack: number, done?: () => void): void {
    const batch: Item[] = []
    let size = 0
    for (const out of outbox) {
      size += itemBytes(out.item)
      if (batch.length && size > s.maxRequestBytes - ENVELOPE_BYTES) break
      batch.push(out.item)
    }
    const body = JSON.stringify(batch.length ? { seq: outbox[0]!.seq, m: batch, ack } : { ack })
    const kindNow = kindOf()
    // A POST names an HTTP transport (the server takes any for any session), never the WebSocket.
    const url = withQuery(base, { transport: kindNow === 'websocket' ? 'long-polling' : kindNow, sid: s.sid })
    const header = { ...request.header, 'Content-Type': 'application/json' }
    posting = env.http.request({ url, method: 'POST', header, body, timeout: REQUEST_SLACK_MS }, (error, response) => {
      posting = undefined
      if (done) {
        if (!error && response!.status === 200) settle(s, ackOf(response!.body))
        return done()
      }
      if (over || env.session !== s) return
      if (!error && response!.status === 200) {
        postErrors = 0
        ackSent = Math.max(ackSent, ack)
        settle(s, ackOf(response!.body))
        // Messages that came while this POST was out are acknowledged now: a stream's server may be waiting for that
        // to send more (its buffer of unacknowledged messages is bounded).
        return flush(s.inSeq > ackSent)
      }
      if (response && response.status === 410) return sessionGone()
      const problem = error || statusError(response!)
      // A POST that keeps failing while the carrier works is a link that does not: the next one resumes.
      if (++postErrors > 4 || (response && response.status < 500 && response.status !== 429)) return activeFailed(problem)
      postTimer = setTimeout(flush, 250 * 2 ** postErrors)
    })
  }

  /** Ends the link: stops everything, then `report` (unless the link ended already). */
  function end(report?: () => void, keepPost = false): void {
    if (over) return
    over = true
    clearTimeout(ackTimer)
    clearTimeout(postTimer)
    clearTimeout(probeTimer)
    if (abortHandshake) abortHandshake()
    if (posting && !keepPost) posting()
    for (const slot of [active, probing]) if (slot && slot.carrier) slot.carrier.stop()
    active = probing = undefined
    if (probeDone) probeDone(false)
    if (report) report()
  }

  // ---- start: a new session, or the one kept from the last link -------------------------------------------

  if (env.session) launch(kind, 'active')
  else {
    abortHandshake = env.http.request(
      { url: withQuery(base, { transport: kind, open: 1 }), method: 'GET', header: request.header, timeout: REQUEST_SLACK_MS },
      (error, response) => {
        abortHandshake = undefined
        if (over) return
        if (error) return end(() => events.onError(error))
        if (response!.status !== 200) return end(() => events.onError(statusError(response!)))
        let info: Partial<SessionInfo> = {}
        try {
          info = JSON.parse(response!.body)
        } catch {
          // Checked below.
        }
        if (typeof info.sid !== 'string' || !info.sid)
          return end(() => events.onError(fail('CONNECT_FAILED', 'not a LongLink endpoint (no session id)')))
        env.session = {
          sid: info.sid,
          hold: Number(info.hold) > 0 ? Number(info.hold) : 25_000,
          maxRequestBytes: Number(info.maxRequestBytes) > 0 ? Number(info.maxRequestBytes) : 1 << 20,
          c: 0,
          inSeq: 0,
          outSeq: 0,
          outbox: [],
        }
        launch(kind, 'active')
      },
    )
  }

  return {
    send(data) {
      const s = env.session
      if (over || !s) return Promise.reject(fail('SEND_FAILED', 'link not open'))
      const item = toItem(toWire(data))
      const size = itemBytes(item)
      if (size > s.maxRequestBytes - ENVELOPE_BYTES) {
        return Promise.reject(fail('INVALID_DATA', `message of ${size} bytes is over the server's ${s.maxRequestBytes}-byte request limit`))
      }
      return new Promise<void>((resolve, reject) => {
        s.outbox.push({ seq: ++s.outSeq, item, settle: [resolve, reject] })
        queueFlush()
      })
    },

    close(code = 1000, reason = '') {
      const s = env.session
      if (over) return
      const carrier = active && active.ready ? active.carrier : undefined
      env.session = undefined
      if (!s) return end(() => setTimeout(() => events.onClose(code, reason)))
      // The close goes after every message not yet acknowledged, in one last packet.
      s.outbox.push({ seq: ++s.outSeq, item: { close: [code, reason] } })
      if (carrier && carrier.send) {
        const fresh = s.outbox.filter((out) => out.seq > wrote)
        carrier.send(JSON.stringify({ seq: fresh[0]!.seq, m: fresh.map((out) => out.item), ack: s.inSeq }))
        // Written to the socket, as a plain WebSocket's send resolves.
        settle(s, s.outSeq)
        return end(() => setTimeout(() => events.onClose(code, reason)))
      }
      end()
      post(s, s.outbox, s.inSeq, () => {
        failOutbox(s, fail('SEND_FAILED', 'closed before the server acknowledged this message'))
        events.onClose(code, reason)
      })
    },

    detach: () => end(),

    probe(probeKind) {
      return new Promise<boolean>((resolve) => {
        if (over || probing || !env.session || !active || !active.ready) return resolve(false)
        probeDone = (ok) => {
          probeDone = undefined
          resolve(ok)
        }
        clearTimeout(probeTimer)
        probeTimer = setTimeout(probeFailed, PROBE_MS)
        launch(probeKind, 'probe')
      })
    },
  }
}
