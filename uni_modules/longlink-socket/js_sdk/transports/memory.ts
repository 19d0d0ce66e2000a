/**
 * Which transport worked last for a host, kept for a day in the platform's storage (wx / uni storage, localStorage),
 * so the next session starts on it instead of failing twice first. Falls back to this runtime's memory.
 */
import type { TransportName } from './options'

interface StorageHost {
  getStorageSync?(key: string): unknown
  setStorageSync?(key: string, value: unknown): void
}
declare const wx: StorageHost | undefined
declare const uni: StorageHost | undefined

/** How long a winner is remembered. */
export const REMEMBER_MS = 24 * 3600 * 1000
const PREFIX = 'longlink:transport:'
const local = new Map<string, string>()

function storage(): { get(key: string): unknown; set(key: string, value: string): void } | undefined {
  // #ifndef MP
  const ls = (globalThis as { localStorage?: { getItem(k: string): string | null; setItem(k: string, v: string): void } }).localStorage
  if (ls) return { get: (k) => ls.getItem(k), set: (k, v) => ls.setItem(k, v) }
  // #endif
  // Through a parameter: uni-h5 rewrites literal `wx.x` and `uni.x` calls (H5 uses localStorage above anyway).
  return hostStorage(typeof wx !== 'undefined' ? wx : undefined) || hostStorage(typeof uni !== 'undefined' ? uni : undefined)
}

function hostStorage(host: StorageHost | undefined): { get(key: string): unknown; set(key: string, value: string): void } | undefined {
  if (!host || typeof host.getStorageSync !== 'function' || typeof host.setStorageSync !== 'function') return undefined
  return { get: (k) => host.getStorageSync!(k), set: (k, v) => host.setStorageSync!(k, v) }
}

/** The transport remembered for `host`, when one is and it has not expired. */
export function recall(host: string): TransportName | undefined {
  let raw: unknown = local.get(host)
  try {
    const store = storage()
    if (store) raw = store.get(PREFIX + host) || raw
  } catch {
    // Storage may be full, missing or refused: memory is a hint only.
  }
  const [name, until] = String(raw || '').split('|')
  return Number(until) > Date.now() ? (name as TransportName) : undefined
}

/** Remembers `name` for `host` for a day. */
export function remember(host: string, name: TransportName): void {
  const value = `${name}|${Date.now() + REMEMBER_MS}`
  local.set(host, value)
  try {
    const store = storage()
    if (store) store.set(PREFIX + host, value)
  } catch {
    // See recall.
  }
}
