import { fail } from '../errors'

type Handler<P> = (payload: P) => void

/** A small typed emitter: `on` (returns the remover), `off` and `emit`. */
export interface Emitter<Events extends object> {
  /** Adds a handler; returns a function that removes it. Throws INVALID_OPTION for an unknown event or a non-function. */
  on<K extends keyof Events>(event: K, handler: Handler<Events[K]>): () => void
  /** Removes one handler (or every handler of the event when none is given). */
  off<K extends keyof Events>(event: K, handler?: Handler<Events[K]>): void
  /** Calls every handler of `event` with `payload`, isolating failures. */
  emit<K extends keyof Events>(event: K, payload: Events[K]): void
}

/**
 * A small typed emitter (no Node `events` in mini-programs). A throwing handler never stops the other handlers or the
 * caller: its error goes to `onHandlerError`. A closure rather than a class: it minifies smaller.
 */
export function createEmitter<Events extends object>(
  names: readonly (keyof Events)[],
  onHandlerError: (error: unknown, event: keyof Events) => void,
): Emitter<Events> {
  const handlers: { [K in keyof Events]?: Handler<Events[K]>[] } = {}
  const off: Emitter<Events>['off'] = (event, handler) => {
    const list = handlers[event]
    if (list) handlers[event] = handler ? list.filter((h) => h !== handler) : []
  }
  return {
    on(event, handler) {
      if (!names.includes(event)) throw fail('INVALID_OPTION', `unknown event "${String(event)}"`)
      if (typeof handler !== 'function') throw fail('INVALID_OPTION', 'handler must be a function')
      // Lists are replaced, never mutated, so `emit` can iterate without copying on every message.
      handlers[event] = [...(handlers[event] || []), handler]
      return () => off(event, handler)
    },
    off,
    emit(event, payload) {
      const list = handlers[event]
      if (!list) return
      for (const handler of list) {
        try {
          handler(payload)
        } catch (error) {
          onHandlerError(error, event)
        }
      }
    },
  }
}
