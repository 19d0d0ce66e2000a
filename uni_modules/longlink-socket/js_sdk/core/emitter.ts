import { fail } from '../errors'

type Handler<P> = (payload: P) => void

/**
 * A small typed emitter (no Node `events` in mini-programs). A throwing handler never stops the other
 * handlers or the caller: its error goes to `onHandlerError`.
 */
export class Emitter<Events extends object> {
  private readonly handlers: { [K in keyof Events]?: Handler<Events[K]>[] } = {}

  constructor(
    private readonly names: readonly (keyof Events)[],
    private readonly onHandlerError: (error: unknown, event: keyof Events) => void,
  ) {}

  /** Adds a handler; returns a function that removes it. */
  on<K extends keyof Events>(event: K, handler: Handler<Events[K]>): () => void {
    if (!this.names.includes(event)) {
      throw fail('INVALID_OPTION', `unknown event "${String(event)}"`)
    }
    if (typeof handler !== 'function') {
      throw fail('INVALID_OPTION', 'handler must be a function')
    }
    // Lists are replaced, never mutated, so `emit` can iterate without copying on every message.
    this.handlers[event] = [...(this.handlers[event] || []), handler]
    return () => this.off(event, handler)
  }

  /** Removes one handler (or every handler of the event when none is given). */
  off<K extends keyof Events>(event: K, handler?: Handler<Events[K]>): void {
    const list = this.handlers[event]
    if (list) this.handlers[event] = handler ? list.filter((h) => h !== handler) : []
  }

  /** Calls every handler of `event` with `payload`, isolating failures. */
  emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    const list = this.handlers[event]
    if (!list) return
    for (const handler of list) {
      try {
        handler(payload)
      } catch (error) {
        this.onHandlerError(error, event)
      }
    }
  }
}
