import { fail, type LongLinkError } from '../errors'

/** The feeding side of the async iterators of one source. */
export interface IteratorHub<T> {
  /** Hands `value` to every live iterator. */
  push(value: T): void
  /** The source stopped: iterators finish what they hold, then end (or throw `error`). Later iterators end at once. */
  end(error?: LongLinkError): void
  /** A new iterator, fed from now on. */
  iterator(): AsyncIterator<T>
}

/**
 * Async iterators over a push source, each with its own buffer of at most `max` values. A consumer that falls
 * further behind is cut off: it gets what it holds, then QUEUE_FULL (and `overflow` tells the source), so nothing is
 * lost without someone being told.
 */
export function createIteratorHub<T>(max: number, overflow: (error: LongLinkError) => void): IteratorHub<T> {
  interface Sink {
    push(value: T): void
    end(error?: LongLinkError): void
  }
  /** Replaced, never mutated: a sink that detaches while values are handed out does not disturb the loop. */
  let sinks: Sink[] = []
  let finished: { error?: LongLinkError | undefined } | undefined

  return {
    push(value) {
      for (const sink of sinks) sink.push(value)
    },
    end(error) {
      if (finished) return
      finished = { error }
      for (const sink of sinks) sink.end(error)
      sinks = []
    },
    iterator() {
      const buffer: T[] = []
      /** Calls of `next()` waiting for a value, in call order. */
      const waiters: [resolve: (result: IteratorResult<T>) => void, reject: (error: unknown) => void][] = []
      /** Set once no more values come; its error is thrown once, after the values held. */
      let over = finished
      const settle = () => {
        while (waiters.length && (buffer.length || over)) {
          const [resolve, reject] = waiters.shift()!
          if (buffer.length) resolve({ value: buffer.shift()!, done: false })
          else {
            const error = over!.error
            over = {}
            error ? reject(error) : resolve({ value: undefined, done: true })
          }
        }
      }
      const detach = () => (sinks = sinks.filter((other) => other !== sink))
      const sink: Sink = {
        push(value) {
          if (!waiters.length && buffer.length >= max) {
            detach()
            over = { error: fail('QUEUE_FULL', `an iterator fell ${max} events behind (queue.max): it ends here`) }
            return overflow(over.error!)
          }
          buffer.push(value)
          settle()
        },
        end(error) {
          over = { error }
          settle()
        },
      }
      if (!over) sinks = [...sinks, sink]
      return {
        next: () => new Promise<IteratorResult<T>>((resolve, reject) => (waiters.push([resolve, reject]), settle())),
        return: () => {
          detach()
          buffer.length = 0
          over = {}
          settle()
          return Promise.resolve({ value: undefined, done: true })
        },
      }
    },
  }
}
