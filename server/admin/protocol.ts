/**
 * What `/admin/live` sends, shared by the server (server/admin/live.ts) and the page (server/admin/page/main.ts).
 * Types only: the page imports this file with `import type`, so nothing of Node reaches the browser bundle.
 *
 * Server → viewer, one JSON text message each:
 * - `hello` once, on connect: the last hour of points, the riders, the last 100 log lines.
 * - `tick` every second: the new point, plus the totals and the 60 s rates for the big numbers.
 * - `riders` every 2 s.
 * - `log` for each new log line, at most {@link LIVE_LOGS_PER_SECOND} a second per viewer; past that, the lines of
 *   that second are dropped and one `log-dropped` tells how many.
 * - the text `pong` for each text `ping` (the LongLink heartbeat).
 * Viewer → server: only `ping` means something; anything else is ignored.
 */
import type { ConnectionInfo } from '../broker/policy'
import type { HistoryPoint } from '../metrics'

export type { HistoryPoint } from '../metrics'

/** A rider connected to the broker, one row of the admin's table (the broker's own description of a connection). */
export type ConnectedRider = ConnectionInfo

/** Totals since the process started. */
export interface LiveTotals {
  messagesIn: number
  messagesOut: number
  reconnects: number
  refusals: number
}

/** Messages per second, averaged over the last 60 s. */
export interface LiveRates {
  inPerSecond: number
  outPerSecond: number
}

export interface HelloMessage {
  type: 'hello'
  /** Server clock (ms), so the page can show "since" relative to the server, not to a skewed local clock. */
  now: number
  /** Milliseconds between two points. */
  intervalMs: number
  /** Points the history keeps (an hour). */
  capacity: number
  /** Oldest first. */
  history: HistoryPoint[]
  /** At most {@link LIVE_RIDERS_MAX} rows; `ridersTotal` counts them all. */
  riders: ConnectedRider[]
  ridersTotal: number
  /** The last 100 structured log lines, oldest first. */
  logs: Record<string, unknown>[]
  totals: LiveTotals
  rates: LiveRates
}

export interface TickMessage {
  type: 'tick'
  point: HistoryPoint
  totals: LiveTotals
  rates: LiveRates
}

export interface RidersMessage {
  type: 'riders'
  now: number
  riders: ConnectedRider[]
  total: number
}

export interface LogMessage {
  type: 'log'
  /** `{time, level, event, ...fields}`, already redacted; `truncated: true` when its fields were too large to send. */
  entry: Record<string, unknown>
}

export interface LogDroppedMessage {
  type: 'log-dropped'
  /** Lines this viewer did not get over the last second. */
  count: number
}

export type LiveMessage = HelloMessage | TickMessage | RidersMessage | LogMessage | LogDroppedMessage

/** Log lines sent per viewer per second before the rest of that second is dropped. */
export const LIVE_LOGS_PER_SECOND = 20
/** Rows of the riders table sent at most. */
export const LIVE_RIDERS_MAX = 500
