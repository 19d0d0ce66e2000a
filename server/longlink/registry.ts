/**
 * The connections of one `attachLongLink`: sessions by sid, and how many connections (sessions and plain WebSockets)
 * each client key and the whole process hold, against `maxSessionsPerClient` and `maxSessions`.
 */
import { HttpError } from './errors'
import type { ResolvedOptions } from './options'
import type { Session } from './session'

export class Registry {
  readonly sessions = new Map<string, Session>()
  private readonly perKey = new Map<string, number>()
  private total = 0

  constructor(private readonly options: ResolvedOptions) {}

  /** Connections held now. */
  get size(): number {
    return this.total
  }

  /** The refusal for one more connection of `key`, or undefined when it fits. */
  refusal(key: string): HttpError | undefined {
    if (this.total >= this.options.maxSessions) {
      return new HttpError(503, 'TOO_MANY_SESSIONS', 'the server holds its maximum of connections; try again later', { 'retry-after': '5' })
    }
    if ((this.perKey.get(key) ?? 0) >= this.options.maxSessionsPerClient) {
      return new HttpError(429, 'TOO_MANY_SESSIONS', `at most ${this.options.maxSessionsPerClient} connections per client`)
    }
    return undefined
  }

  /** Counts a connection of `key`; returns what uncounts it (idempotent). */
  count(key: string): () => void {
    this.total++
    this.perKey.set(key, (this.perKey.get(key) ?? 0) + 1)
    let counted = true
    return () => {
      if (!counted) return
      counted = false
      this.total--
      const n = (this.perKey.get(key) ?? 1) - 1
      if (n <= 0) this.perKey.delete(key)
      else this.perKey.set(key, n)
    }
  }
}
