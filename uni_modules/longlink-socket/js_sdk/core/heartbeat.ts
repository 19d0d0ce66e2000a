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
export interface Heartbeat {
  /** Starts (or restarts) watching from now. */
  start(): void
  /** Inbound traffic arrived: the link is alive. */
  alive(): void
  /** A pong arrived: returns the round trip of the last ping in ms, if one was out. */
  pong(): number | undefined
  /** Stops the timer. */
  stop(): void
  /**
   * Pings now and expects life within `timeout`. Returns whether anything arrived since, for an owner that wants an
   * answer sooner (a check after a network change or a return from background).
   */
  check(): () => boolean
}

/** A heartbeat for one connection (see {@link Heartbeat}). A closure: its state minifies to short local names. */
export function createHeartbeat(interval: number, timeout: number, ping: () => void, dead: () => void): Heartbeat {
  let timer: ReturnType<typeof setTimeout> | undefined
  let lastInbound = 0
  /** Inbound messages so far: compared across a ping, it tells life apart even within one millisecond. */
  let inbound = 0
  let inboundAtPing = 0
  let pingSentAt = 0
  /** Set when this turn's inbound traffic has been timed: later messages of the same turn share the time. */
  let timed = false

  const arm = (delay: number) => {
    clearTimeout(timer)
    timer = setTimeout(due, delay)
  }

  /** The timer fired: either a ping is due, or the answer to one is. */
  function due(): void {
    timed = false
    if (pingSentAt) {
      if (inbound === inboundAtPing) return dead()
      pingSentAt = 0
    }
    const silence = Date.now() - lastInbound
    if (silence < interval) arm(interval - silence)
    else check()
  }

  function check(): () => boolean {
    const before = (inboundAtPing = inbound)
    pingSentAt = Date.now()
    arm(timeout)
    ping()
    return () => inbound !== before
  }

  function alive(): void {
    inbound++
    // Reading the clock once per turn rather than per message: a busy link delivers many messages in one turn,
    // and the first one's time is never later than the last's, so a ping can only come a little early, never late.
    if (timed) return
    timed = true
    lastInbound = Date.now()
    Promise.resolve().then(() => (timed = false))
  }

  return {
    start() {
      lastInbound = Date.now()
      pingSentAt = 0
      arm(interval)
    },
    alive,
    pong() {
      alive()
      const rtt = pingSentAt ? Date.now() - pingSentAt : undefined
      pingSentAt = 0
      return rtt
    },
    stop: () => clearTimeout(timer),
    check,
  }
}
