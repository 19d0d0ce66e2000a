/**
 * Watches one link. A ping goes out after `interval` ms without inbound traffic; if nothing at all arrives
 * within `timeout` ms after it, the link is dead. Any inbound message counts as life, so a busy link never
 * pings. Links that die without a close event (a phone changing networks, a NAT dropping state, a frozen
 * server) are found within `interval + timeout`.
 *
 * Inbound traffic only records a time stamp; the one timer re-checks it when it fires. Resetting timers on
 * every message would cost more than the message itself on a busy link.
 *
 * The owner passes `ping` (send one ping on the current link) and `dead` (the link has been silent for
 * `interval + timeout`, or `timeout` after a `check()`: drop it).
 */
export class Heartbeat {
  private timer: ReturnType<typeof setTimeout> | undefined
  private lastInbound = 0
  /** Inbound messages so far: compared across a ping, it tells life apart even within one millisecond. */
  private inbound = 0
  private inboundAtPing = 0
  private pingSentAt = 0
  /** Set when this turn's inbound traffic has been timed: later messages of the same turn share the time. */
  private timed = false

  constructor(
    private readonly interval: number,
    private readonly timeout: number,
    private readonly ping: () => void,
    private readonly dead: () => void,
  ) {}

  /** Starts (or restarts) watching from now. */
  start(): void {
    this.lastInbound = Date.now()
    this.pingSentAt = 0
    this.arm(this.interval)
  }

  /** Inbound traffic arrived: the link is alive. */
  alive(): void {
    this.inbound++
    // Reading the clock once per turn rather than per message: a busy link delivers many messages in one turn,
    // and the first one's time is never later than the last's, so a ping can only come a little early, never late.
    if (this.timed) return
    this.timed = true
    this.lastInbound = Date.now()
    Promise.resolve().then(() => (this.timed = false))
  }

  /** A pong arrived: returns the round trip of the last ping in ms, if one was out. */
  pong(): number | undefined {
    this.alive()
    const rtt = this.pingSentAt ? Date.now() - this.pingSentAt : undefined
    this.pingSentAt = 0
    return rtt
  }

  /** Stops the timer. */
  stop(): void {
    clearTimeout(this.timer)
  }

  private arm(delay: number): void {
    clearTimeout(this.timer)
    this.timer = setTimeout(() => this.due(), delay)
  }

  /** The timer fired: either a ping is due, or the answer to one is. */
  private due(): void {
    this.timed = false
    const now = Date.now()
    if (this.pingSentAt) {
      if (this.inbound === this.inboundAtPing) return this.dead()
      this.pingSentAt = 0
    }
    const silence = now - this.lastInbound
    if (silence < this.interval) this.arm(this.interval - silence)
    else this.check()
  }

  /** Verify the link now (after a network change or a return from background): ping, and expect life within `timeout`. */
  check(): void {
    this.pingSentAt = Date.now()
    this.inboundAtPing = this.inbound
    this.arm(this.timeout)
    this.ping()
  }
}
