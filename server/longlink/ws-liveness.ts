/**
 * Finds dead WebSockets: every `intervalMs` each tracked socket that answered the previous protocol ping gets a new
 * one; one that did not is cut (its 'close' follows, code 1006). A link that died without a FIN is otherwise only
 * noticed when a write fails, which may be never for a quiet connection.
 */
import type { WebSocket } from 'ws'

export class WsLiveness {
  private readonly alive = new Map<WebSocket, boolean>()
  private readonly timer: NodeJS.Timeout

  constructor(intervalMs: number) {
    this.timer = setInterval(() => this.sweep(), intervalMs)
    this.timer.unref()
  }

  track(ws: WebSocket): void {
    this.alive.set(ws, true)
    ws.on('pong', () => this.alive.set(ws, true))
    ws.once('close', () => this.alive.delete(ws))
  }

  /** Every socket tracked and not closed yet. */
  sockets(): WebSocket[] {
    return [...this.alive.keys()]
  }

  stop(): void {
    clearInterval(this.timer)
  }

  private sweep(): void {
    for (const [ws, alive] of this.alive) {
      if (!alive) {
        ws.terminate()
        continue
      }
      this.alive.set(ws, false)
      if (ws.readyState === ws.OPEN) ws.ping()
    }
  }
}
