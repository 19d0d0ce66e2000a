/** Reading the protocol's query counters (`c`, `ack`) strictly: decimal digits only, a safe integer, no sign. */
import { badRequest } from './errors'

const COUNTER = /^(0|[1-9][0-9]{0,15})$/

/**
 * The counter `name` of `query` as an integer ≥ `min`; `fallback` when absent and one is given. Throws 400 for
 * anything else.
 */
export function queryCounter(query: URLSearchParams, name: string, min: number, fallback?: number): number {
  const raw = lastParam(query, name)
  if (raw === null) {
    if (fallback !== undefined) return fallback
    throw badRequest(`"${name}" is missing`)
  }
  const n = COUNTER.test(raw) ? Number(raw) : NaN
  if (!Number.isSafeInteger(n) || n < min) throw badRequest(`"${name}" must be an integer ≥ ${min}`)
  return n
}

/**
 * The last value of `name` in `query`, or null: the protocol's parameters come after the app's own, so an app URL that
 * already has one of these names does not shadow them.
 */
export function lastParam(query: URLSearchParams, name: string): string | null {
  const all = query.getAll(name)
  return all.length ? all[all.length - 1]! : null
}
