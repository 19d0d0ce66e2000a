/**
 * The HTTP carriers of a session: a poll (answered at once, or held until there is something to send or `hold` ms
 * pass) and an SSE stream (`hello` first, then one event per message with `id: <seq>`, until `maxStreamMs`). Each
 * delivers the buffered messages after the cursor its request carried; what the client acknowledges later is freed by
 * the session, so a lost answer is repaired by the next request.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { sendJsonText } from './errors'
import type { ResolvedOptions } from './options'
import { encodePacket } from './packet'
import type { Carrier, Session } from './session'
import { openEventStream, type EventStream } from './sse'

/** A `long-polling` or `polling` request as the session's carrier. */
export class PollCarrier implements Carrier {
  private answered = false
  private holdTimer: NodeJS.Timeout | undefined
  private batching: NodeJS.Immediate | undefined

  constructor(
    readonly kind: 'long-polling' | 'polling',
    private readonly session: Session,
    private readonly res: ServerResponse,
    /** The client's ack: the answer holds the messages after it. */
    private readonly cursor: number,
    private readonly headers: Record<string, string>,
  ) {}

  /** Call after the session took this carrier: answers now, or holds. */
  start(holdMs: number): void {
    if (this.answered) return
    this.res.once('close', () => {
      // The client went away before the answer: the messages stay buffered for its next poll.
      if (this.answered) return
      this.answered = true
      this.clear()
      this.session.released(this)
    })
    if (this.kind === 'polling' || holdMs === 0 || this.session.after(this.cursor).items.length > 0) return this.answer(false)
    this.holdTimer = setTimeout(() => this.answer(false), holdMs)
    this.holdTimer.unref()
  }

  wake(): void {
    // Messages queued in the same turn (an MQTT packet and the ones right after it) leave in one answer.
    if (this.answered || this.batching) return
    this.batching = setImmediate(() => this.answer(false))
  }

  end(how: 'replaced' | 'final'): void {
    this.answer(how === 'replaced')
  }

  private answer(empty: boolean): void {
    if (this.answered) return
    this.answered = true
    this.clear()
    const pending = this.session.after(this.cursor)
    if (empty) pending.items = []
    sendJsonText(this.res, 200, encodePacket(pending.seq, pending.items, this.session.clientCursor), this.headers)
    this.session.released(this)
  }

  private clear(): void {
    clearTimeout(this.holdTimer)
    if (this.batching) clearImmediate(this.batching)
    this.batching = undefined
  }
}

/** An `sse` request as the session's carrier. */
export class SseCarrier implements Carrier {
  readonly kind = 'sse'
  private stream: EventStream | undefined
  /** The number of the last message written on this stream. */
  private sent: number
  private pumping = false

  constructor(
    private readonly session: Session,
    cursor: number,
  ) {
    this.sent = cursor
  }

  /** Call after the session took this carrier: opens the stream, says hello, sends what is buffered. */
  start(req: IncomingMessage, res: ServerResponse, options: ResolvedOptions, headers: Record<string, string>): void {
    const stream = openEventStream(req, res, {
      heartbeatMs: options.sseHeartbeatMs,
      maxDurationMs: options.maxStreamMs,
      headers: { ...headers, 'cache-control': 'no-store, no-transform' },
    })
    this.stream = stream
    stream.onClose(() => this.session.released(this))
    if (stream.isClosed) return
    stream.send({ event: 'hello', data: `{"ack":${this.session.clientCursor}}` })
    void this.pump()
  }

  wake(): void {
    void this.pump()
  }

  end(how: 'replaced' | 'final'): void {
    const stream = this.stream
    if (!stream || stream.isClosed) return
    if (how === 'final') {
      // The session is over: what is left goes out now, whatever the socket's buffer (the stream ends right after).
      const { seq, items } = this.session.after(this.sent)
      items.forEach((data, i) => stream.send({ id: seq + i, data }))
    }
    stream.close()
  }

  /** Writes the messages after {@link sent}; waits for the socket to drain when it is congested. */
  private async pump(): Promise<void> {
    const stream = this.stream
    if (!stream || this.pumping) return
    this.pumping = true
    try {
      while (!stream.isClosed) {
        const { seq, items } = this.session.after(this.sent)
        if (items.length === 0) break
        let congested = false
        for (let i = 0; i < items.length && !congested; i++) {
          congested = !stream.send({ id: seq + i, data: items[i] })
          this.sent = seq + i
        }
        if (congested) await stream.drained()
      }
    } finally {
      this.pumping = false
    }
  }
}
