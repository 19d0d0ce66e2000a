/** What the heartbeat needs from its owner. */
export interface HeartbeatHooks {
  /** Send one ping on the current link. */
  ping(): void
  /** The link has been silent for `interval + timeout` (or `timeout` after a `check()`): drop it. */
  dead(): void
}

/**
 * Watches one link. A ping goes out after `interval` ms without inbound traffic; if nothing at all arrives
 * within `timeout` ms after it, the link is dead. Any inbound message counts as life, so a busy link never
 * pings. Links that die without a close event (a phone changing networks, a NAT dropping state, a frozen
 * server) are found within `interval + timeout`.
 */
export class Heartbeat {
  private pingTimer: ReturnType<typeof setTimeout> | undefined
  private deadTimer: ReturnType<typeof setTimeout> | undefined
  private pingSentAt = 0

  constructor(
    private readonly interval: number,
    private readonly timeout: number,
    private readonly hooks: HeartbeatHooks,
  ) {}

  /** Starts (or restarts) watching from now. */
  start(): void {
    this.stop()
    this.pingTimer = setTimeout(() => this.sendPing(), this.interval)
  }

  /** Inbound traffic arrived: the link is alive. */
  alive(): void {
    if (this.pingTimer === undefined && this.deadTimer === undefined) return
    this.start()
  }

  /** A pong arrived: returns the round trip of the last ping in ms, if one was out. */
  pong(): number | undefined {
    const rtt = this.pingSentAt ? Date.now() - this.pingSentAt : undefined
    this.pingSentAt = 0
    this.alive()
    return rtt
  }

  /** Verify the link now (after a network change or a return from background): ping, and expect life within `timeout`. */
  check(): void {
    this.stop()
    this.sendPing()
  }

  /** Stops every timer. */
  stop(): void {
    if (this.pingTimer !== undefined) clearTimeout(this.pingTimer)
    if (this.deadTimer !== undefined) clearTimeout(this.deadTimer)
    this.pingTimer = this.deadTimer = undefined
  }

  private sendPing(): void {
    this.pingTimer = undefined
    this.pingSentAt = Date.now()
    this.deadTimer = setTimeout(() => {
      this.deadTimer = undefined
      this.hooks.dead()
    }, this.timeout)
    this.hooks.ping()
  }
}
