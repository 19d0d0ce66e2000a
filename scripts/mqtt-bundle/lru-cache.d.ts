// Types of the lru-cache stand-in (lru-cache.js beside this file), for the tests that exercise it directly.

/** A bounded map in use order: get() and set() mark a key most recently used. */
export declare class LRUCache<K, V> {
  constructor(options: { max: number })
  readonly max: number
  readonly size: number
  get(key: K): V | undefined
  set(key: K, value: V): this
  has(key: K): boolean
  delete(key: K): boolean
  clear(): void
  /** From the most to the least recently used. */
  keys(): Generator<K>
}
