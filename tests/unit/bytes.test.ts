import { describe, expect, it } from 'vitest'
import { utf8Length } from '../../uni_modules/longlink-socket/js_sdk/core/bytes'

describe('utf8Length (stats.bytesIn / bytesOut of text)', () => {
  // What goes on the wire is what a UTF-8 encoder makes of the text: Node's Buffer is the reference.
  const texts = {
    empty: '',
    ascii: 'hello {"a":1}',
    latin: 'café',
    chinese: '开锁成功',
    emoji: 'ok 😀 🚲',
    'edges of each width': '\u007f\u0080\u07ff\u0800\uffff',
    'lone high surrogate at the end': 'a\ud83d',
    'lone high surrogate before a wide character': '\ud83d中',
    'lone high surrogate before a 2-byte character': '\ud83dé',
    'two high surrogates, then a low one': '\ud83d\ud83d\ude00',
    'lone low surrogate': '\ude00x',
    'reversed pair': '\ude00\ud83d',
    'long ASCII with one wide character at the end': 'x'.repeat(1000) + '中',
  }
  it.each(Object.entries(texts))('%s', (_, text) => {
    expect(utf8Length(text)).toBe(Buffer.byteLength(text, 'utf8'))
  })
})
