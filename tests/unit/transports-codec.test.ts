/** The session protocol's codec and the transport options: pure functions, checked against Node's own base64. */
import { describe, expect, it } from 'vitest'
import { fromBase64, parsePacket, toBase64, toItem } from '../../uni_modules/longlink-socket/js_sdk/transports/codec'
import { httpUrl, resolveTransports, withQuery } from '../../uni_modules/longlink-socket/js_sdk/transports/options'

describe('base64', () => {
  it('matches Node for every length 0–300 and random bytes, both ways', () => {
    let seed = 7
    for (let length = 0; length <= 300; length++) {
      const bytes = new Uint8Array(length).map(() => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24)
      const expected = Buffer.from(bytes).toString('base64')
      expect(toBase64(bytes.buffer)).toBe(expected)
      expect([...new Uint8Array(fromBase64(expected))]).toEqual([...bytes])
    }
  })

  it('refuses what is not base64', () => {
    expect(() => fromBase64('ab$d')).toThrow()
    expect(() => fromBase64('abcde')).toThrow()
    expect(() => fromBase64('中文')).toThrow()
  })
})

describe('packets', () => {
  it('items: text stays text, bytes become base64', () => {
    expect(toItem('hé')).toBe('hé')
    expect(toItem(new Uint8Array([1, 2, 3]).buffer)).toEqual({ b: 'AQID' })
  })

  it.each(['', 'null', '[]', '"x"', '{"m":[1]}', '{"seq":1,"m":{}}', 'not json'])('%j is not a packet', (text) => {
    expect(() => parsePacket(text)).toThrow(expect.objectContaining({ code: 'CONNECT_FAILED' }))
  })

  it('a packet with or without messages', () => {
    expect(parsePacket('{"seq":3,"m":["a"],"ack":2}')).toEqual({ seq: 3, m: ['a'], ack: 2 })
    expect(parsePacket('{"ack":0}')).toEqual({ ack: 0 })
  })
})

describe('options', () => {
  it('defaults to WebSocket alone', () => {
    expect(resolveTransports({})).toEqual({ list: ['websocket'], pollInterval: 2000, probeInterval: 60_000 })
  })

  it('keeps the order given', () => {
    expect(resolveTransports({ transports: ['polling', 'sse'], poll: { interval: 500 }, probeInterval: false })).toEqual({
      list: ['polling', 'sse'],
      pollInterval: 500,
      probeInterval: false,
    })
  })

  it('URLs: ws→http, wss→https, query appended before a fragment', () => {
    expect(httpUrl('wss://a.example/mqtt?x=1')).toBe('https://a.example/mqtt?x=1')
    expect(httpUrl('WS://a.example/mqtt')).toBe('http://a.example/mqtt')
    expect(withQuery('http://a/p?x=1#f', { sid: 'n.a b', c: 2 })).toBe('http://a/p?x=1&sid=n.a%20b&c=2')
  })
})
