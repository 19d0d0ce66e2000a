// MQTT.js keeps its outgoing topic aliases (MQTT 5) in `lru-cache` (~20 KB minified, with TTLs, sizes, fetch and
// disposal). Its one use (lib/topic-alias-send.js) needs a bounded map whose get() and set() mark a key most
// recently used, whose keys() run from most to least recently used, and size and clear(): a Map in use order does.
export class LRUCache {
  /** @param {{ max: number }} options the most entries kept; setting one more drops the least recently used */
  constructor(options) {
    this.max = options.max
    this._map = new Map()
  }

  /** Entries held. */
  get size() {
    return this._map.size
  }

  /** The value for `key`, which becomes the most recently used; undefined when absent. */
  get(key) {
    if (!this._map.has(key)) return undefined
    const value = this._map.get(key)
    this._map.delete(key)
    this._map.set(key, value)
    return value
  }

  /** Stores `value` as the most recently used entry, dropping the least recently used one past `max`. */
  set(key, value) {
    this._map.delete(key)
    this._map.set(key, value)
    if (this._map.size > this.max) this._map.delete(this._map.keys().next().value)
    return this
  }

  has(key) {
    return this._map.has(key)
  }

  delete(key) {
    return this._map.delete(key)
  }

  clear() {
    this._map.clear()
  }

  /** Keys from the most to the least recently used, as lru-cache yields them. */
  *keys() {
    yield* [...this._map.keys()].reverse()
  }
}
