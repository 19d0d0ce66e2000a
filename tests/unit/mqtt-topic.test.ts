import { describe, expect, it } from 'vitest'
import { checkFilter, checkTopic, topicMatches } from '../../uni_modules/longlink-socket/js_sdk/mqtt/topic'
import { utf8Decode, utf8Encode } from '../../uni_modules/longlink-socket/js_sdk/mqtt/utf8'

describe('MQTT topic filters', () => {
  it.each(['a', 'a/b', '#', '+', 'a/+/c', 'a/#', '+/+', '/', 'a//b', '$SYS/#', '$share/g/a/+'])('accepts %j', (filter) => {
    expect(checkFilter(filter)).toBe(filter)
  })

  it.each(['', 'a/#/b', 'a+', 'a/b#', '#/a', 'a/+b', '$share/g', '$share//a', '$share/g+/a', 'a\u0000b', 5])(
    'rejects %j with INVALID_TOPIC',
    (filter) => {
      expect(() => checkFilter(filter)).toThrow(expect.objectContaining({ code: 'INVALID_TOPIC' }))
    },
  )

  it.each(['a/+', '#', 'a/#', '', 'a\u0000'])('refuses to publish to %j', (topic) => {
    expect(() => checkTopic(topic)).toThrow(expect.objectContaining({ code: 'INVALID_TOPIC' }))
  })

  it.each([
    ['a/b/c', 'a/b/c', true],
    ['a/+/c', 'a/b/c', true],
    ['a/+/c', 'a/b/d', false],
    ['a/+', 'a/b/c', false],
    ['a/#', 'a', true],
    ['a/#', 'a/b/c', true],
    ['#', 'anything/at/all', true],
    ['+/+', '/x', true],
    ['+', '$SYS', false],
    ['#', '$SYS/broker', false],
    ['$SYS/#', '$SYS/broker', true],
    ['$share/g/mobike/+', 'mobike/B1', true],
    ['mobike/unlocked/B1', 'mobike/unlocked/B10', false],
  ])('%j matches %j: %s', (filter, topic, expected) => {
    expect(topicMatches(filter as string, topic as string)).toBe(expected)
  })
})

describe('UTF-8 without TextEncoder', () => {
  const samples = ['', 'ascii', 'héllo', '开锁成功 🚲', '\u{10FFFF}', 'a\u0000b']
  it.each(samples)('round-trips %j the way TextEncoder does', (text) => {
    const bytes = utf8Encode(text)
    expect([...bytes]).toEqual([...new TextEncoder().encode(text)])
    expect(utf8Decode(bytes)).toBe(text)
  })

  it('decodes invalid bytes to U+FFFD like TextDecoder', () => {
    for (const bytes of [[0xff], [0xc3], [0xe2, 0x28, 0xa1], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80]]) {
      expect(utf8Decode(new Uint8Array(bytes))).toBe(new TextDecoder().decode(new Uint8Array(bytes)))
    }
  })
})
