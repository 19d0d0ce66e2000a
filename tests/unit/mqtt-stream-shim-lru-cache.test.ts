/**
 * The lru-cache stand-in bundled into the vendored MQTT.js (scripts/mqtt-bundle/lru-cache.js): MQTT.js keeps its
 * outgoing MQTT 5 topic aliases in it and, when all are taken, reuses the alias of the least recently used topic.
 */
import { describe, expect, it } from 'vitest'
import { LRUCache } from '../../scripts/mqtt-bundle/lru-cache.js'

describe("the lru-cache stand-in, as MQTT.js's outgoing topic aliases use it", () => {
  it('keeps at most max entries, dropping the least recently used; get() and set() count as use', () => {
    const cache = new LRUCache<number, string>({ max: 2 })
    cache.set(1, 'a/1').set(2, 'a/2')
    expect(cache.get(1)).toBe('a/1')
    cache.set(3, 'a/3')
    expect(cache.size).toBe(2)
    expect(cache.get(2)).toBeUndefined()
    expect([...cache.keys()]).toEqual([3, 1])
    cache.set(1, 'b/1')
    expect([...cache.keys()]).toEqual([1, 3])
    expect(cache.get(1)).toBe('b/1')
    cache.clear()
    expect(cache.size).toBe(0)
    expect([...cache.keys()]).toEqual([])
  })
})
