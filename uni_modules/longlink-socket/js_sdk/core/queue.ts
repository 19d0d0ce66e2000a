import { fail, type LongLinkError } from '../errors'
import type { WireData } from '../transport'

/**
 * One message waiting for the link, with the resolve and reject of the `send` that queued it (a tuple: it minifies
 * smaller than an object, and the mini-program bundle is small).
 */
export type QueuedSend = [data: WireData, resolve: () => void, reject: (error: LongLinkError) => void]

/** The bounded, ordered queue of sends made while the link is not open. Overflow is refused, never dropped. */
export interface SendQueue {
  /** Adds one send, or rejects it with `QUEUE_FULL`. */
  push(item: QueuedSend): void
  /** Takes every queued send, oldest first. */
  drain(): QueuedSend[]
  /** Rejects every queued send with `error`. */
  rejectAll(error: LongLinkError): void
}

/** A send queue of at most `max` sends (see {@link SendQueue}). */
export function createSendQueue(max: number): SendQueue {
  let items: QueuedSend[] = []
  const drain = () => {
    const taken = items
    items = []
    return taken
  }
  return {
    push(item) {
      if (items.length < max) items.push(item)
      else item[2](fail('QUEUE_FULL', `queue full (${max})`))
    },
    drain,
    rejectAll(error) {
      for (const item of drain()) item[2](error)
    },
  }
}
