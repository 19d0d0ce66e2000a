import { fail, type LongLinkError } from '../errors'
import type { WireData } from '../transport'

/** One message waiting for the link, with the promise of the `send` that queued it. */
export interface QueuedSend {
  data: WireData
  resolve: () => void
  reject: (error: LongLinkError) => void
}

/** The bounded, ordered queue of sends made while the link is not open. Overflow is refused, never dropped. */
export class SendQueue {
  private items: QueuedSend[] = []

  constructor(private readonly max: number) {}

  /** Adds one send, or rejects it with `QUEUE_FULL`. */
  push(item: QueuedSend): void {
    if (this.items.length >= this.max) {
      item.reject(fail('QUEUE_FULL', `queue full (${this.max})`))
      return
    }
    this.items.push(item)
  }

  /** Takes every queued send, oldest first. */
  drain(): QueuedSend[] {
    const items = this.items
    this.items = []
    return items
  }

  /** Rejects every queued send with `error`. */
  rejectAll(error: LongLinkError): void {
    for (const item of this.drain()) item.reject(error)
  }
}
