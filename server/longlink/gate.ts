/**
 * The send bound of one connection: up to `max` bytes are in flight (sent and not acknowledged, or not yet written
 * out); a send beyond that waits its turn, in order; waiting bytes beyond another `max` are refused. Every waiting send
 * is settled: admitted, or rejected when the connection ends.
 */
import { LongLinkError } from './errors'

interface Waiter {
  size: number
  /** Admitted whatever the bound (a close item after the messages sent before it). */
  force: boolean
  admit: () => void
  resolve: () => void
  reject: (err: Error) => void
}

export class SendGate {
  private used = 0
  private waitingBytes = 0
  private readonly waiting: Waiter[] = []
  private failure: Error | undefined

  constructor(private readonly max: number) {}

  /** Bytes admitted and not yet released. */
  get inFlight(): number {
    return this.used
  }

  /**
   * Runs `admit` once `size` bytes fit (at once when nothing waits and the bound is not reached), then resolves.
   * Rejects with `BUFFER_FULL` when the message alone is over the bound or the waiting bytes would exceed it.
   */
  enter(size: number, admit: () => void): Promise<void> {
    if (this.failure) return Promise.reject(this.failure)
    if (size > this.max) return Promise.reject(new LongLinkError('BUFFER_FULL', `a message of ${size} bytes is over maxBufferBytes (${this.max})`))
    if (this.waiting.length === 0 && this.used < this.max) {
      this.used += size
      admit()
      return Promise.resolve()
    }
    if (this.waitingBytes + size > this.max) {
      return Promise.reject(new LongLinkError('BUFFER_FULL', `more than maxBufferBytes (${this.max}) are waiting to be sent`))
    }
    return this.wait(size, false, admit)
  }

  /** Runs `admit` after every send waiting now, whatever the bound. */
  enterLast(admit: () => void): void {
    if (this.failure) return
    if (this.waiting.length === 0) return admit()
    void this.wait(0, true, admit).catch(() => {})
  }

  /** Frees `size` bytes and admits the waiting sends that fit now. */
  release(size: number): void {
    this.used = Math.max(0, this.used - size)
    while (this.waiting.length > 0 && !this.failure && (this.used < this.max || this.waiting[0].force)) {
      const w = this.waiting.shift()!
      this.waitingBytes -= w.size
      this.used += w.size
      w.admit()
      w.resolve()
    }
  }

  /** Rejects every waiting send and every later one with `err`. */
  fail(err: Error): void {
    if (this.failure) return
    this.failure = err
    this.waitingBytes = 0
    for (const w of this.waiting.splice(0)) w.reject(err)
  }

  private wait(size: number, force: boolean, admit: () => void): Promise<void> {
    this.waitingBytes += size
    return new Promise<void>((resolve, reject) => this.waiting.push({ size, force, admit, resolve, reject }))
  }
}
