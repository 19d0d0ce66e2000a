/**
 * One page watching `/admin/live`, and how output to it is held back when it cannot keep up, so a slow viewer costs
 * gaps in its own charts rather than the backend's memory.
 */
import type { WebSocket } from 'ws'
import type { Logger } from '../log'

/** Above this many bytes waiting for a viewer, ticks and log lines for it are dropped until it drains. */
const SLOW_VIEWER_BYTES = 256 * 1024
/** Above this, the viewer is cut off: its memory would otherwise grow with every second it falls behind. */
const STUCK_VIEWER_BYTES = 1024 * 1024

/** A live viewer and its per-second log budget. */
export interface Viewer {
  ws: WebSocket
  /** Id of the session it signed in with; a logout of that session closes it. */
  session: string
  /** Log lines sent in the current second. */
  logs: number
  /** Log lines not sent since the last `log-dropped`. */
  logsDropped: number
  /** Seen alive since the last liveness round. */
  alive: boolean
}

/** True while the viewer has more output waiting than it should: what is optional for it is skipped. */
export const isSlow = (v: Viewer): boolean => v.ws.bufferedAmount > SLOW_VIEWER_BYTES

/** Cuts a viewer off when its output keeps piling up; true when it was. */
export function cutIfStuck(v: Viewer, logger: Logger): boolean {
  if (v.ws.bufferedAmount <= STUCK_VIEWER_BYTES) return false
  const bufferedBytes = v.ws.bufferedAmount
  v.ws.terminate()
  // Logged on the next turn: the line goes to the live feed, which may be iterating the viewers right now.
  setImmediate(() => logger.warn('admin.live.slow_viewer', { bufferedBytes }))
  return true
}

/** Sends unless the viewer is closed or stuck. Returns whether the text was queued. */
export function sendTo(v: Viewer, text: string, logger: Logger): boolean {
  if (v.ws.readyState !== v.ws.OPEN || cutIfStuck(v, logger)) return false
  v.ws.send(text)
  return true
}
