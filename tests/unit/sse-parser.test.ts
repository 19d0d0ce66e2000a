import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createUtf8StreamDecoder } from '../../uni_modules/longlink-socket/js_sdk/sse/decoder'
import { createSseParser, type SseEvent } from '../../uni_modules/longlink-socket/js_sdk/sse/parser'

// Node's own decoder is the reference, kept here because some suites take the global away.
const NodeTextDecoder = globalThis.TextDecoder
const encoder = new TextEncoder()
const bytesOf = (text: string) => encoder.encode(text)
const referenceDecode = (bytes: Uint8Array) => new NodeTextDecoder('utf-8', { ignoreBOM: true }).decode(bytes)

type Entry = ['event', SseEvent] | ['retry', number] | ['comment']

function event(data: string, lastEventId = '', type = 'message', id?: string): Entry {
  return ['event', id === undefined ? { type, data, lastEventId } : { type, data, lastEventId, id }]
}

function recorder(lastEventId?: string) {
  const log: Entry[] = []
  const parser = createSseParser(
    { event: (e) => log.push(['event', e]), retry: (ms) => log.push(['retry', ms]), comment: () => log.push(['comment']) },
    lastEventId,
  )
  return { log, parser }
}

/** Byte slices of `bytes` cut at the given offsets (ascending). */
function chunks(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const out: Uint8Array[] = []
  let at = 0
  for (const cut of [...cuts, bytes.length]) {
    out.push(bytes.subarray(at, cut))
    at = cut
  }
  return out
}

/** Parses a whole stream fed in chunks cut at `cuts`, then ends it. */
function parse(input: string | Uint8Array, cuts: number[] = [], lastEventId?: string) {
  const { log, parser } = recorder(lastEventId)
  for (const chunk of chunks(typeof input === 'string' ? bytesOf(input) : input, cuts)) parser.feed(chunk)
  parser.end()
  return { log, lastEventId: parser.lastEventId }
}

/** Mulberry32: the same cases on every run. */
function prng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
type Random = ReturnType<typeof prng>
const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)]
const int = (random: Random, max: number) => Math.floor(random() * (max + 1))

/** The chunkings to try on a stream: every single cut and byte by byte when small, random cuts always. */
function chunkings(bytes: Uint8Array, random: Random, small: boolean): number[][] {
  const all: number[][] = [[]]
  if (small) {
    for (let cut = 1; cut < bytes.length; cut++) all.push([cut])
    all.push(Array.from({ length: Math.max(0, bytes.length - 1) }, (_, i) => i + 1))
  }
  // Cut before every UTF-8 continuation byte (inside each character) and after every CR (between CR and LF).
  const hostile: number[] = []
  for (let i = 1; i < bytes.length; i++) if ((bytes[i] & 0xc0) === 0x80 || bytes[i - 1] === 13) hostile.push(i)
  all.push(hostile)
  for (let n = 0; n < 8; n++) {
    const cuts = new Set<number>()
    const count = int(random, Math.min(64, bytes.length))
    for (let i = 0; i < count; i++) cuts.add(1 + int(random, bytes.length - 2))
    all.push([...cuts].filter((cut) => cut > 0 && cut < bytes.length).sort((a, b) => a - b))
  }
  return all
}

/** Runs the suite once with Node's TextDecoder and once without any, as on a phone that lacks it. */
const decoderPaths = [
  ['TextDecoder', false],
  ['no TextDecoder (hand-written decoder)', true],
] as const

function withoutTextDecoder() {
  let descriptor: PropertyDescriptor | undefined
  beforeAll(() => {
    descriptor = Object.getOwnPropertyDescriptor(globalThis, 'TextDecoder')
    delete (globalThis as { TextDecoder?: unknown }).TextDecoder
  })
  afterAll(() => {
    Object.defineProperty(globalThis, 'TextDecoder', descriptor!)
  })
}

describe.each(decoderPaths)('UTF-8 stream decoder, %s', (_, remove) => {
  if (remove) withoutTextDecoder()

  it('sees the runtime as intended', () => {
    expect(typeof (globalThis as { TextDecoder?: unknown }).TextDecoder).toBe(remove ? 'undefined' : 'function')
  })

  const decodeAll = (parts: Uint8Array[]) => {
    const decoder = createUtf8StreamDecoder()
    return parts.map((part) => decoder.decode(part)).join('') + decoder.flush()
  }

  it.each([
    ['ASCII', [0x61, 0x62], 'ab'],
    ['a BOM is kept', [0xef, 0xbb, 0xbf, 0x61], '\ufeffa'],
    ['each width', [...bytesOf('\u007f\u0080\u07ff\u0800\uffff\u{10000}\u{10ffff}')], '\u007f\u0080\u07ff\u0800\uffff\u{10000}\u{10ffff}'],
    ['a truncated 3-byte sequence is one U+FFFD', [0xe2, 0x82, 0x41], '\ufffdA'],
    ['overlong 2-byte', [0xc0, 0xaf], '\ufffd\ufffd'],
    ['overlong 3-byte', [0xe0, 0x80, 0xaf], '\ufffd\ufffd\ufffd'],
    ['overlong 4-byte', [0xf0, 0x80, 0x80, 0xaf], '\ufffd\ufffd\ufffd\ufffd'],
    ['surrogate', [0xed, 0xa0, 0x80], '\ufffd\ufffd\ufffd'],
    ['past U+10FFFF', [0xf4, 0x90, 0x80, 0x80], '\ufffd\ufffd\ufffd\ufffd'],
    ['F5 and above', [0xf5, 0xff, 0x41], '\ufffd\ufffdA'],
    ['a lone continuation byte', [0x80, 0x41], '\ufffdA'],
    ['unfinished at the end', [0x41, 0xf1, 0x80, 0x80], 'A\ufffd'],
    // The Unicode Standard's own example of maximal subparts (§3.9, U+FFFD substitution).
    ['Unicode example', [0x61, 0xf1, 0x80, 0x80, 0xe1, 0x80, 0xc2, 0x62, 0x80, 0x63, 0x80, 0xbf, 0x64], 'a\ufffd\ufffd\ufffdb\ufffdc\ufffd\ufffdd'],
  ])('%s, under every chunking', (_, list, expected) => {
    const bytes = new Uint8Array(list)
    expect(referenceDecode(bytes)).toBe(expected)
    for (const cuts of chunkings(bytes, prng(1), true)) expect(decodeAll(chunks(bytes, cuts))).toBe(expected)
  })

  it('decodes random bytes as TextDecoder does, under every chunking', () => {
    const random = prng(7)
    const pieces: number[][] = [
      [0x41],
      [0x80],
      [0xbf],
      [0xa0],
      [0x90],
      [0x8f],
      [0xc0],
      [0xc1],
      [0xc2],
      [0xdf],
      [0xe0],
      [0xe1],
      [0xed],
      [0xef],
      [0xf0],
      [0xf1],
      [0xf4],
      [0xf5],
      [0xff],
      [...bytesOf('é中😀')],
      [0xe4, 0xb8],
      [0xf0, 0x9f, 0x98],
    ]
    for (let n = 0; n < 400; n++) {
      const list: number[] = []
      const count = 1 + int(random, n < 300 ? 10 : 400)
      for (let i = 0; i < count; i++) list.push(...pick(random, pieces))
      const bytes = new Uint8Array(list)
      const expected = referenceDecode(bytes)
      for (const cuts of chunkings(bytes, random, n < 300)) expect(decodeAll(chunks(bytes, cuts))).toBe(expected)
    }
  })

  it('decodes a large chunk in one call', () => {
    const text = 'x中😀é'.repeat(100_000)
    expect(decodeAll([bytesOf(text)])).toBe(text)
  })

  it('is ready for a new stream after flush', () => {
    const decoder = createUtf8StreamDecoder()
    expect(decoder.decode(new Uint8Array([0xe4, 0xb8]))).toBe('')
    expect(decoder.flush()).toBe('\ufffd')
    expect(decoder.decode(new Uint8Array([0xad, 0x41]))).toBe('\ufffdA')
    expect(decoder.flush()).toBe('')
  })
})

describe.each(decoderPaths)('SSE parser, %s', (_, remove) => {
  if (remove) withoutTextDecoder()

  describe('the WHATWG examples and rules', () => {
    it('joins data lines with LF (the stock ticker example)', () => {
      expect(parse('data: YHOO\ndata: +2\ndata: 10\n\n').log).toEqual([event('YHOO\n+2\n10')])
    })

    it('the comment, id and space example', () => {
      const { log, lastEventId } = parse(': test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n')
      expect(log).toStrictEqual([
        ['comment'],
        event('first event', '1', 'message', '1'),
        event('second event', '', 'message', ''),
        event(' third event'),
      ])
      expect(lastEventId).toBe('')
    })

    it('the empty data example: "data" and "data:" are empty lines of data; the unfinished block is dropped', () => {
      expect(parse('data\n\ndata\ndata\n\ndata:').log).toStrictEqual([event(''), event('\n')])
    })

    it('"data:test" and "data: test" are the same; only one space goes', () => {
      expect(parse('data:test\n\ndata: test\n\ndata:  test\n\ndata:\ttest\n\n').log).toStrictEqual([
        event('test'),
        event('test'),
        event(' test'),
        event('\ttest'),
      ])
    })

    it('splits at the first colon only', () => {
      expect(parse('data: a: b:c\n\ndata::\n\n').log).toStrictEqual([event('a: b:c'), event(':')])
    })

    it('event types; an empty one is "message"; the type does not outlive its block', () => {
      expect(
        parse('event: add\ndata: 73857293\n\nevent:\ndata: 1\n\nevent\ndata: 2\n\ndata: 3\n\nevent: a\nevent: b\ndata: 4\n\n').log,
      ).toStrictEqual([event('73857293', '', 'add'), event('1'), event('2'), event('3'), event('4', '', 'b')])
    })

    it('an empty line without data dispatches nothing and forgets the type', () => {
      expect(parse('event: x\n\n\n\ndata: 1\n\n').log).toStrictEqual([event('1')])
    })

    it('commits an id at the empty line even without data; later events carry it without `id`', () => {
      const { log, parser } = recorder()
      parser.feed(bytesOf('id: 7\n'))
      expect(parser.lastEventId).toBe('')
      parser.feed(bytesOf('\n'))
      expect(parser.lastEventId).toBe('7')
      expect(log).toEqual([])
      parser.feed(bytesOf('data: x\n\nid\ndata: y\n\n'))
      expect(log).toStrictEqual([event('x', '7'), event('y', '', 'message', '')])
      expect(parser.lastEventId).toBe('')
    })

    it('the last of several ids in a block wins', () => {
      expect(parse('id: 1\nid: 2\ndata: x\n\n').log).toStrictEqual([event('x', '2', 'message', '2')])
    })

    it('ignores an id that contains U+0000', () => {
      const { log, lastEventId } = parse('id: 1\n\nid: a\0b\ndata: x\n\nid: \0\n\n')
      expect(log).toStrictEqual([event('x', '1')])
      expect(lastEventId).toBe('1')
    })

    it('keeps U+0000 in data and event type', () => {
      expect(parse('event: a\0\ndata: \0\n\n').log).toStrictEqual([event('\0', '', 'a\0')])
    })

    it.each([
      ['retry: 1000', [1000]],
      ['retry:0', [0]],
      ['retry: 007', [7]],
      ['retry: 1e3', []],
      ['retry:  1000', []],
      ['retry: 1000 ', []],
      ['retry:', []],
      ['retry', []],
      ['retry: -1', []],
      ['retry: +1', []],
      ['retry: 10.5', []],
      ['retry: ０', []],
      ['Retry: 5', []],
    ])('%j', (line, expected) => {
      expect(parse(line + '\n').log).toEqual(expected.map((ms) => ['retry', ms]))
    })

    it('reports retry and comments in stream order, and neither dispatches', () => {
      expect(parse('data: a\nretry: 5\n: hi\n\n:\n:data: x\n\n').log).toStrictEqual([['retry', 5], ['comment'], event('a'), ['comment'], ['comment']])
    })

    it('ignores unknown fields, field names being case- and space-sensitive', () => {
      expect(parse('foo: bar\nData: x\nDATA: y\ndata : z\n data: w\nid : 9\nevents: e\n\n').log).toEqual([])
      expect(parse('foo\ndata: kept\nbar:\n\n').log).toStrictEqual([event('kept')])
    })

    it('works without the optional handlers', () => {
      const got: SseEvent[] = []
      const parser = createSseParser({ event: (e) => got.push(e) })
      parser.feed(bytesOf(': ping\nretry: 10\ndata: x\n\n'))
      expect(got).toStrictEqual([{ type: 'message', data: 'x', lastEventId: '' }])
    })

    it('starts from the given last event id', () => {
      const { log, lastEventId } = parse('data: a\n\n', [], '42')
      expect(log).toStrictEqual([event('a', '42')])
      expect(lastEventId).toBe('42')
    })
  })

  describe('BOM and line endings', () => {
    const bom = [0xef, 0xbb, 0xbf]

    it('strips one BOM at the start, whatever the chunking', () => {
      const bytes = new Uint8Array([...bom, ...bytesOf('data: a\n\n')])
      for (const cuts of chunkings(bytes, prng(3), true)) expect(parse(bytes, cuts).log).toStrictEqual([event('a')])
      // An empty first chunk does not use up the stream start.
      expect(parse(bytes, [0, 0, 1]).log).toStrictEqual([event('a')])
    })

    it('keeps a second BOM: it makes the first field name unknown', () => {
      expect(parse('\ufeff\ufeffdata: a\n\ndata: b\n\n').log).toStrictEqual([event('b')])
    })

    it('keeps a BOM anywhere else', () => {
      expect(parse('data: \ufeffa\n\n\ufeffdata: b\n\n').log).toStrictEqual([event('\ufeffa')])
      expect(parse('data: a\n\ndata: \ufeff\n\n').log).toStrictEqual([event('a'), event('\ufeff')])
    })

    it('accepts CRLF, CR and LF, mixed', () => {
      expect(parse('data: a\r\ndata: b\rdata: c\n\r\ndata: d\r\rdata: e\n\r').log).toStrictEqual([event('a\nb\nc'), event('d'), event('e')])
    })

    it('a CR at the end of a chunk and its LF at the start of the next make one line ending', () => {
      expect(parse('data: a\r\ndata: b\r\n\r\n', [8]).log).toStrictEqual([event('a\nb')])
      expect(parse('data: a\r\ndata: b\r\n\r\n', [8, 8, 8]).log).toStrictEqual([event('a\nb')])
      // Two CRs split apart stay two line endings: an empty line.
      expect(parse('data: a\r\rdata: b\r\r', [8]).log).toStrictEqual([event('a'), event('b')])
      // And a CR at the end of a chunk followed by anything else ends its line by itself.
      expect(parse('data: a\rdata: b\r\r', [8]).log).toStrictEqual([event('a\nb')])
    })
  })

  describe('end of stream and reset', () => {
    it('drops an unfinished event and does not commit its id', () => {
      const { log, parser } = recorder()
      parser.feed(bytesOf('id: 1\ndata: a\n\nid: 2\ndata: b\n'))
      parser.end()
      expect(log).toStrictEqual([event('a', '1', 'message', '1')])
      expect(parser.lastEventId).toBe('1')
      // The next stream starts from the committed id, with empty buffers.
      parser.feed(bytesOf('data: c\n\n'))
      expect(log).toStrictEqual([event('a', '1', 'message', '1'), event('c', '1')])
    })

    it('ignores an unterminated last line, even a retry or a comment', () => {
      expect(parse('data: a\n\nretry: 5').log).toStrictEqual([event('a')])
      expect(parse(':x').log).toEqual([])
    })

    it('reset() starts a new stream: BOM again, buffers cleared, committed id kept', () => {
      const { log, parser } = recorder()
      parser.feed(new Uint8Array([0xef, 0xbb, 0xbf, ...bytesOf('id: 3\ndata: a\n\nid: 4\nevent: x\ndata: b\ndata: c')]))
      parser.reset()
      expect(parser.lastEventId).toBe('3')
      parser.feed(new Uint8Array([0xef, 0xbb, 0xbf, ...bytesOf(': again\ndata: d\n\n')]))
      expect(log).toStrictEqual([event('a', '3', 'message', '3'), ['comment'], event('d', '3')])
    })

    it('reset() also forgets half a character', () => {
      const { log, parser } = recorder()
      parser.feed(new Uint8Array([...bytesOf('data: a\n\ndata: '), 0xe4, 0xb8]))
      parser.reset()
      parser.feed(new Uint8Array([0xad, ...bytesOf('data: b\n\n')]))
      // The lone continuation byte is a U+FFFD that makes the first field name unknown.
      expect(log).toStrictEqual([event('a')])
      parser.feed(bytesOf('data: c\n\n'))
      expect(log).toStrictEqual([event('a'), event('c')])
    })
  })

  describe('a handler that throws', () => {
    it('propagates, and the lines already received are parsed on the next feed, once', () => {
      const seen: string[] = []
      let throwFor = 'a'
      const parser = createSseParser({
        event(e) {
          seen.push(e.data)
          if (e.data === throwFor) throw new Error('handler failed')
        },
      })
      expect(() => parser.feed(bytesOf('data: a\n\ndata: b\nid: 2\n\ndata: c\r'))).toThrow('handler failed')
      expect(seen).toEqual(['a'])
      expect(parser.lastEventId).toBe('')
      throwFor = ''
      parser.feed(bytesOf('\n\n'))
      expect(seen).toEqual(['a', 'b', 'c'])
      expect(parser.lastEventId).toBe('2')
    })

    it('at a CR that ends a chunk: its LF in the next chunk is still not an empty line', () => {
      const seen: string[] = []
      const parser = createSseParser({
        event: (e) => seen.push(e.data),
        comment() {
          throw new Error('comment failed')
        },
      })
      expect(() => parser.feed(bytesOf('data: a\n:\r'))).toThrow('comment failed')
      parser.feed(bytesOf('\ndata: b\n\n'))
      expect(seen).toEqual(['a\nb'])
    })

    it('in retry, and at end(), which still resets', () => {
      const seen: string[] = []
      const parser = createSseParser({
        event(e) {
          seen.push(e.data)
          if (e.data.endsWith('b')) throw new Error('event failed')
        },
        retry() {
          throw new Error('retry failed')
        },
      })
      expect(() => parser.feed(bytesOf('data: a\nretry: 1\ndata: b\n\ndata: c\n\ndata: d'))).toThrow('retry failed')
      expect(() => parser.end()).toThrow('event failed')
      expect(seen).toEqual(['a\nb'])
      parser.end()
      parser.feed(bytesOf('data: e\n\n'))
      expect(seen).toEqual(['a\nb', 'e'])
    })
  })

  describe('properties', () => {
    // Text made of whole code points of every UTF-8 width, plus the characters the syntax cares about.
    const alphabet = [...'abcXYZ019 :::\t\0é߿中文\uffff😀🚲\u{10ffff}\u{10000}\ufeff\u0080\u07ff\u0800']
    const text = (random: Random, max: number) => Array.from({ length: int(random, max) }, () => pick(random, alphabet)).join('')

    type Op = { kind: 'data' | 'event' | 'id' | 'retry' | 'comment' | 'other' | 'blank'; value: string }
    interface Line {
      op: Op
      text: string
      ending: '' | '\n' | '\r' | '\r\n'
    }

    /** A field line with `value`, written in one of the ways that mean it. */
    function field(random: Random, name: string, value: string): string {
      const ways = [name + ': ' + value]
      if (!value.startsWith(' ')) ways.push(name + ':' + value)
      if (value === '') ways.push(name)
      return pick(random, ways)
    }

    function generate(random: Random, blocks: number, maxText: number): Line[] {
      const ops: Op[] = []
      for (let b = 0; b < blocks; b++) {
        const count = int(random, 5)
        for (let i = 0; i < count; i++) {
          const kind = pick(random, ['data', 'data', 'data', 'event', 'id', 'retry', 'comment', 'other'] as const)
          const value =
            kind === 'retry'
              ? pick(random, [String(int(random, 100000)), '0', '', ' 5', '1e3', '-1', '5 ', '１'])
              : kind === 'other'
                ? pick(random, ['Data', 'DATA', 'data ', ' data', 'ids', 'foo', '\ufeffdata', 'daté', 'retry2'])
                : text(random, maxText)
          ops.push({ kind, value })
        }
        // The last block may be left unfinished.
        if (b < blocks - 1 || random() < 0.5) ops.push({ kind: 'blank', value: '' })
      }
      const lines: Line[] = []
      for (const op of ops) {
        let written: string
        if (op.kind === 'blank') written = ''
        else if (op.kind === 'comment') written = ':' + op.value
        else if (op.kind === 'other') written = op.value + pick(random, ['', ':', ': x', ':data: y'])
        else written = field(random, op.kind, op.value)
        let ending = pick(random, ['\n', '\r', '\r\n'] as const)
        // After a CR, an empty line ended by a lone LF would read as the second half of a CRLF.
        if (written === '' && ending === '\n' && lines[lines.length - 1]?.ending === '\r') ending = '\r\n'
        lines.push({ op, text: written, ending })
      }
      if (lines.length && random() < 0.3) lines[lines.length - 1].ending = ''
      return lines
    }

    /** Writes the lines out, with a BOM when the dice say so (and always when the first line starts with one). */
    function write(random: Random, lines: Line[]): Uint8Array {
      const body = lines.map((line) => line.text + line.ending).join('')
      return bytesOf((body.startsWith('\ufeff') || random() < 0.3 ? '\ufeff' : '') + body)
    }

    /** What the stream must produce, from the operations alone. */
    function reference(lines: Line[]) {
      const log: Entry[] = []
      let data: string[] = []
      let type = ''
      let idBuffer = ''
      let blockId: string | undefined
      let committed = ''
      for (const { op, ending } of lines) {
        if (!ending) break // never terminated: never a line
        if (op.kind === 'data') data.push(op.value)
        else if (op.kind === 'event') type = op.value
        else if (op.kind === 'id' && !op.value.includes('\0')) idBuffer = blockId = op.value
        else if (op.kind === 'retry' && /^[0-9]+$/.test(op.value)) log.push(['retry', Number(op.value)])
        else if (op.kind === 'comment') log.push(['comment'])
        else if (op.kind === 'blank') {
          committed = idBuffer
          if (data.length) log.push(event(data.join('\n'), committed, type || 'message', blockId))
          data = []
          type = ''
          blockId = undefined
        }
      }
      return { log, lastEventId: committed }
    }

    it('small streams: every chunking gives what the model says', () => {
      const random = prng(11)
      for (let n = 0; n < 300; n++) {
        const lines = generate(random, 1 + int(random, 3), 4)
        const bytes = write(random, lines)
        const expected = reference(lines)
        for (const cuts of chunkings(bytes, random, true)) expect(parse(bytes, cuts)).toStrictEqual(expected)
      }
    })

    it('large streams: random chunkings give what the whole buffer and the model give', () => {
      const random = prng(12)
      for (let n = 0; n < 20; n++) {
        const lines = generate(random, 200 + int(random, 800), 40)
        const bytes = write(random, lines)
        const expected = reference(lines)
        const whole = parse(bytes)
        expect(whole).toStrictEqual(expected)
        for (const cuts of chunkings(bytes, random, false)) expect(parse(bytes, cuts)).toStrictEqual(whole)
      }
    })

    it('invalid UTF-8 in values becomes U+FFFD as TextDecoder makes it, under every chunking', () => {
      const random = prng(13)
      // Any byte but CR and LF: invalid sequences never swallow an ASCII byte, so the lines stay where they are.
      const junk = [0x41, 0x3a, 0x20, 0x80, 0xbf, 0xc0, 0xc2, 0xe0, 0xe4, 0xb8, 0xad, 0xed, 0xa0, 0xf0, 0x9f, 0x98, 0x80, 0xf4, 0x90, 0xf5, 0xff]
      for (let n = 0; n < 150; n++) {
        const parts: number[] = []
        const expected: Entry[] = []
        for (let e = 1 + int(random, 2); e > 0; e--) {
          const value = Array.from({ length: 1 + int(random, 8) }, () => pick(random, junk))
          parts.push(...bytesOf('data:x'), ...value, ...bytesOf(pick(random, ['\n\n', '\r\r', '\r\n\r\n'])))
          expected.push(event('x' + referenceDecode(new Uint8Array(value))))
        }
        const bytes = new Uint8Array(parts)
        for (const cuts of chunkings(bytes, random, true)) expect(parse(bytes, cuts).log).toStrictEqual(expected)
      }
    })
  })
})
