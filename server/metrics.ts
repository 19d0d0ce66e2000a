/**
 * Counters for the admin, cheap enough for the broker's hot path, and an hour of per-second history.
 *
 * - {@link createMetrics}: totals plus per-second buckets over the last 60 s. `countIn`/`countOut` run once per MQTT
 *   PUBLISH (tens of thousands per second), so they only read the clock, bump two numbers in preallocated typed
 *   arrays and return: no allocation, no listener call.
 * - {@link createHistory}: once a second, one point `{time, online, inPerSecond, outPerSecond, activeRides,
 *   reconnects, refusals}` into a ring of 3600 slots held in fixed typed arrays (an hour at 1 s).
 */

/** The admin's counters. All methods are safe to call from any hot path. */
export interface Metrics {
  /** PUBLISH packets accepted by the broker. */
  countIn(n?: number): void
  /** PUBLISH packets delivered to subscribers. */
  countOut(n?: number): void
  /** A rider's client came back after losing its link. */
  countReconnect(): void
  /** Any refused operation (login, subscribe, publish, HTTP 401/403/429). */
  countRefusal(): void
  totals(): { messagesIn: number; messagesOut: number; reconnects: number; refusals: number }
  /** Per-second rates over the last 60 s (messages in/out per second, averaged). */
  rates(): { inPerSecond: number; outPerSecond: number }
}

/** Seconds averaged by {@link Metrics.rates}. */
const RATE_WINDOW = 60
/** One bucket more than the window: the current, still filling second has its own. */
const BUCKETS = RATE_WINDOW + 1

/**
 * Creates the counters. `now` is the clock (ms), injectable for tests.
 *
 * The rate window counts complete seconds only (the current, partial second would pull the average down), and a
 * process younger than 60 s averages over the seconds it has lived, so the first minute does not read low.
 */
export function createMetrics(now: () => number = Date.now): Metrics {
  const bucketsIn = new Float64Array(BUCKETS)
  const bucketsOut = new Float64Array(BUCKETS)
  const startSecond = Math.floor(now() / 1000)
  // The second the bucket at `currentSecond % BUCKETS` belongs to; older buckets are zeroed when it moves on.
  let currentSecond = startSecond
  let messagesIn = 0
  let messagesOut = 0
  let reconnects = 0
  let refusals = 0

  /** Moves the cursor to `second`, zeroing the buckets of the seconds skipped (at most the whole window). */
  const advance = (second: number): void => {
    if (second <= currentSecond) return
    const steps = Math.min(second - currentSecond, BUCKETS)
    for (let k = 1; k <= steps; k++) {
      const i = (second - steps + k) % BUCKETS
      bucketsIn[i] = 0
      bucketsOut[i] = 0
    }
    currentSecond = second
  }

  return {
    countIn(n = 1) {
      // `!(n > 0)` also turns away NaN: a bad argument must not poison the totals.
      if (!(n > 0)) return
      const second = Math.floor(now() / 1000)
      if (second !== currentSecond) advance(second)
      bucketsIn[currentSecond % BUCKETS] += n
      messagesIn += n
    },
    countOut(n = 1) {
      if (!(n > 0)) return
      const second = Math.floor(now() / 1000)
      if (second !== currentSecond) advance(second)
      bucketsOut[currentSecond % BUCKETS] += n
      messagesOut += n
    },
    countReconnect() {
      reconnects++
    },
    countRefusal() {
      refusals++
    },
    totals: () => ({ messagesIn, messagesOut, reconnects, refusals }),
    rates() {
      advance(Math.floor(now() / 1000))
      // A clock that stepped back leaves the cursor ahead: read the buckets from where they are.
      const second = currentSecond
      const span = Math.min(RATE_WINDOW, second - startSecond)
      if (span <= 0) return { inPerSecond: 0, outPerSecond: 0 }
      let sumIn = 0
      let sumOut = 0
      for (let k = 1; k <= span; k++) {
        const i = (second - k) % BUCKETS
        sumIn += bucketsIn[i]
        sumOut += bucketsOut[i]
      }
      return { inPerSecond: sumIn / span, outPerSecond: sumOut / span }
    },
  }
}

/** One second of history. */
export interface HistoryPoint {
  /** When the point was taken (ms since epoch). */
  time: number
  /** Connections to the broker (null when unknown, e.g. with an external broker). */
  online: number | null
  /** PUBLISH packets accepted per second since the previous point. */
  inPerSecond: number
  /** PUBLISH packets delivered per second since the previous point. */
  outPerSecond: number
  /** Rides unlocking or under way. */
  activeRides: number
  /** Reconnects counted since the previous point (in that second). */
  reconnects: number
  /** Refusals counted since the previous point (in that second). */
  refusals: number
}

/** The instantaneous values the history samples besides the counters. */
export type Gauges = () => { online: number | null; activeRides: number }

export interface HistoryOptions {
  metrics: Metrics
  gauges: Gauges
  /** Points kept (default 3600: an hour at one point a second). */
  capacity?: number
  /** Sampling period in ms (default 1000). */
  intervalMs?: number
  /** Clock (ms), injectable for tests. */
  now?: () => number
  /** Called when `gauges` throws (the point keeps the previous gauge values). */
  onGaugeError?: (err: unknown) => void
}

/** An hour (by default) of {@link HistoryPoint}s in a fixed ring, sampled by an `unref()`ed timer. */
export interface History {
  /** Takes a point now (the timer calls this every `intervalMs`) and tells the listeners. */
  sample(): HistoryPoint
  /** The points kept, oldest first (allocates: for snapshots, not for hot paths). */
  points(): HistoryPoint[]
  /** The newest point, if any. */
  last(): HistoryPoint | undefined
  /** Number of points kept (at most `capacity`). */
  size(): number
  readonly capacity: number
  /** Listens to each new point; returns the remover. */
  onSample(listener: (point: HistoryPoint) => void): () => void
  /** Starts the timer (idempotent); takes a first point at once so the history is never empty. */
  start(): void
  stop(): void
}

/** Rounds a rate to 2 decimals: enough for a chart, and it keeps the JSON short. */
const round2 = (x: number): number => Math.round(x * 100) / 100

/**
 * Creates the history. Rates are the differences of {@link Metrics.totals} between two points divided by the time
 * between them, so the history works with any `Metrics` and a late timer tick does not read as a traffic spike.
 */
export function createHistory(options: HistoryOptions): History {
  const { metrics, gauges } = options
  const capacity = Math.max(1, Math.floor(options.capacity ?? 3600))
  const intervalMs = Math.max(10, options.intervalMs ?? 1000)
  const now = options.now ?? Date.now
  // Column storage, allocated once: a point a second for an hour never grows the heap.
  const time = new Float64Array(capacity)
  const online = new Float64Array(capacity) // NaN stands for null
  const inRate = new Float64Array(capacity)
  const outRate = new Float64Array(capacity)
  const rides = new Float64Array(capacity)
  const reconnects = new Float64Array(capacity)
  const refusals = new Float64Array(capacity)
  let head = 0 // next slot to write
  let count = 0
  const listeners = new Set<(point: HistoryPoint) => void>()
  let timer: NodeJS.Timeout | undefined
  let prev: { time: number; totals: ReturnType<Metrics['totals']> } | undefined
  let lastGauges: { online: number | null; activeRides: number } = { online: null, activeRides: 0 }

  const at = (slot: number): HistoryPoint => ({
    time: time[slot],
    online: Number.isNaN(online[slot]) ? null : online[slot],
    inPerSecond: inRate[slot],
    outPerSecond: outRate[slot],
    activeRides: rides[slot],
    reconnects: reconnects[slot],
    refusals: refusals[slot],
  })

  const history: History = {
    capacity,
    sample() {
      const t = now()
      const totals = metrics.totals()
      try {
        const g = gauges()
        lastGauges = { online: g.online, activeRides: g.activeRides }
      } catch (err) {
        options.onGaugeError?.(err)
      }
      const seconds = prev ? Math.max(0.001, (t - prev.time) / 1000) : 1
      const slot = head
      time[slot] = t
      online[slot] = lastGauges.online ?? NaN
      inRate[slot] = prev ? round2(Math.max(0, totals.messagesIn - prev.totals.messagesIn) / seconds) : 0
      outRate[slot] = prev ? round2(Math.max(0, totals.messagesOut - prev.totals.messagesOut) / seconds) : 0
      rides[slot] = lastGauges.activeRides
      reconnects[slot] = prev ? Math.max(0, totals.reconnects - prev.totals.reconnects) : 0
      refusals[slot] = prev ? Math.max(0, totals.refusals - prev.totals.refusals) : 0
      head = (head + 1) % capacity
      if (count < capacity) count++
      prev = { time: t, totals }
      const point = at(slot)
      for (const listener of listeners) {
        try {
          listener(point)
        } catch {
          /* one broken listener must not stop the sampling */
        }
      }
      return point
    },
    points() {
      const out: HistoryPoint[] = new Array(count)
      const first = (head - count + capacity) % capacity
      for (let k = 0; k < count; k++) out[k] = at((first + k) % capacity)
      return out
    },
    last: () => (count === 0 ? undefined : at((head - 1 + capacity) % capacity)),
    size: () => count,
    onSample(listener) {
      listeners.add(listener)
      return () => void listeners.delete(listener)
    },
    start() {
      if (timer) return
      history.sample()
      timer = setInterval(() => history.sample(), intervalMs)
      // The history must never keep the process alive on its own.
      timer.unref()
    },
    stop() {
      if (timer) clearInterval(timer)
      timer = undefined
    },
  }
  return history
}
