/**
 * SSE benchmarks: events per second out of createSseParser against the parser people write by hand (a streaming
 * TextDecoder, split on '\n', `data:` lines dispatched on an empty line), on the same in-memory stream cut into the
 * same chunks; how many events each gets right when the chunks split characters and CR LF pairs; and what the SSE
 * entry adds to the mp-weixin bundle, alone and on top of the core.
 */
import { buildWithPage, bundleDelta, page } from './lib/bundle-size'
import { compileAndImport } from './lib/compile'
import { median, round } from './lib/stats'

type SseEntry = typeof import('../uni_modules/longlink-socket/js_sdk/sse')

/** What both parsers hand over per event, as far as the comparison goes. */
interface Got {
  type: string
  data: string
  id: string
}

/** Something fed the stream's chunks; `end` once they are all in. */
interface Sink {
  feed(chunk: Uint8Array): void
  end(): void
}

// ---- the stream --------------------------------------------------------------------------------------------------

const EVENTS = 200_000
/** Events per stretch of one line-ending style: every fourth stretch is CRLF, the rest LF. */
const STRETCH = 1000
const ROUNDS = 15

/** A seeded generator (mulberry32), so every run sees the same stream and the same chunks. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const ASCII = [
  'ride started',
  'bike B1024 unlocked at gate 3',
  'battery 87%, range 41 km',
  'lock confirmed, have a nice day',
  'payment of 3.50 CNY received',
]
const CHINESE = ['骑行开始', '车辆 B1024 已在 3 号门解锁', '电量 87%，续航 41 公里', '已锁车，祝您愉快', '已收到 3.50 元付款，感谢使用共享单车']

/**
 * `count` events with ids, most with an `event` field, ASCII or Chinese text or a JSON line, a fifth of them with two
 * to four data lines, a keep-alive comment every 20 events, and every fourth stretch of STRETCH events in CRLF.
 */
function makeStream(count: number, crlfEvery = 4): { bytes: Uint8Array; expected: Got[] } {
  const next = random(42)
  const pick = <T>(list: T[]) => list[Math.floor(next() * list.length)]
  const parts: string[] = []
  const expected: Got[] = []
  for (let i = 0; i < count; i++) {
    const eol = Math.floor(i / STRETCH) % crlfEvery === crlfEvery - 1 ? '\r\n' : '\n'
    const id = String(i + 1)
    const r = next()
    const type = r < 0.4 ? 'location' : r < 0.7 ? 'ride' : 'message'
    const lines: string[] = []
    const many = next() < 0.2 ? 2 + Math.floor(next() * 3) : 1
    for (let j = 0; j < many; j++) {
      const k = next()
      if (k < 0.35) lines.push(pick(ASCII))
      else if (k < 0.7) lines.push(pick(CHINESE))
      else lines.push(JSON.stringify({ bike: `B${1000 + (i % 977)}`, lat: 31.2304 + (i % 100) / 1e4, lng: 121.4737, note: pick(CHINESE) }))
    }
    let block = i % 20 === 0 ? `: keep-alive${eol}` : ''
    block += `id: ${id}${eol}`
    if (type !== 'message' || next() < 0.5) block += `event: ${type}${eol}`
    for (const line of lines) block += `data: ${line}${eol}`
    parts.push(block + eol)
    expected.push({ type, data: lines.join('\n'), id })
  }
  return { bytes: new TextEncoder().encode(parts.join('')), expected }
}

/** Chunks of `min`–`max` bytes (views of the stream, as a network hands over buffers). */
function cut(bytes: Uint8Array, min: number, max: number, seed: number): Uint8Array[] {
  const next = random(seed)
  const chunks: Uint8Array[] = []
  for (let at = 0; at < bytes.length;) {
    const size = min + Math.floor(next() * (max - min + 1))
    chunks.push(bytes.subarray(at, at + size))
    at += size
  }
  return chunks
}

/** How many chunk boundaries fall inside a UTF-8 character, and between a CR and its LF. */
function splits(chunks: Uint8Array[]) {
  let utf8 = 0
  let crlf = 0
  for (let i = 0; i + 1 < chunks.length; i++) {
    const last = chunks[i][chunks[i].length - 1]
    const first = chunks[i + 1][0]
    if ((first & 0xc0) === 0x80) utf8++
    if (last === 13 && first === 10) crlf++
  }
  return { insideUtf8Character: utf8, betweenCrAndLf: crlf }
}

// ---- the two parsers ---------------------------------------------------------------------------------------------

/** The parser people write: TextDecoder in stream mode, split on '\n', no CR, BOM or field rules beyond the obvious. */
function createBaseline(onEvent: (event: Got) => void): Sink {
  const decoder = new TextDecoder()
  let buffer = ''
  let type = ''
  let id = ''
  let data: string[] = []
  const line = (text: string) => {
    if (text === '') {
      if (data.length) onEvent({ type: type || 'message', data: data.join('\n'), id })
      type = ''
      data = []
    } else if (text.startsWith('data:')) data.push(text.slice(5).trimStart())
    else if (text.startsWith('event:')) type = text.slice(6).trim()
    else if (text.startsWith('id:')) id = text.slice(3).trim()
  }
  return {
    feed(chunk) {
      buffer += decoder.decode(chunk, { stream: true })
      const lines = buffer.split('\n')
      buffer = lines.pop()!
      for (const text of lines) line(text)
    },
    end() {
      buffer = ''
    },
  }
}

let entry: SseEntry

function createOurs(onEvent: (event: Got) => void): Sink {
  return entry.createSseParser({ event: (event) => onEvent({ type: event.type, data: event.data, id: event.id ?? '' }) })
}

/** Ours as on a phone without TextDecoder: the parser picks its decoder when it is created. */
function createOursNoTextDecoder(onEvent: (event: Got) => void): Sink {
  const g = globalThis as { TextDecoder?: unknown }
  const saved = g.TextDecoder
  g.TextDecoder = undefined
  try {
    return createOurs(onEvent)
  } finally {
    g.TextDecoder = saved
  }
}

/** Proof that the entry looks at globalThis.TextDecoder when a parser is created (so hiding it selects the fallback). */
function readsGlobalTextDecoder(): boolean {
  const g = globalThis as { TextDecoder?: typeof TextDecoder }
  const saved = g.TextDecoder!
  let made = 0
  g.TextDecoder = class extends saved {
    constructor(...args: ConstructorParameters<typeof TextDecoder>) {
      super(...args)
      made++
    }
  }
  try {
    createOurs(() => {})
  } finally {
    g.TextDecoder = saved
  }
  return made > 0
}

// ---- timing ------------------------------------------------------------------------------------------------------

const SIDES = { baseline: createBaseline, ours: createOurs, oursNoTextDecoder: createOursNoTextDecoder }
type SideName = keyof typeof SIDES
const NAMES = Object.keys(SIDES) as SideName[]

/** The stream's events per second through one side (events the stream holds, whatever the side made of them). */
function rate(name: SideName, chunks: Uint8Array[], events: number): number {
  let count = 0
  let chars = 0
  const sink = SIDES[name]((event) => {
    count++
    chars += event.data.length
  })
  const start = performance.now()
  for (let i = 0; i < chunks.length; i++) sink.feed(chunks[i])
  sink.end()
  const seconds = (performance.now() - start) / 1000
  if (name !== 'baseline' && count !== events) throw new Error(`${name} dispatched ${count} of ${events} events`)
  if (chars < 0) throw new Error('unreachable: keeps the data in use')
  return events / seconds
}

function gc() {
  ;(globalThis as { gc?: () => void }).gc?.()
}

/** ROUNDS rounds of the three sides in a rotating order; ratios taken within each round. */
function throughput(label: string, chunks: Uint8Array[], events: number) {
  for (const name of NAMES) rate(name, chunks, events) // warm-up
  const rates: Record<SideName, number[]> = { baseline: [], ours: [], oursNoTextDecoder: [] }
  const ours: number[] = []
  const fallback: number[] = []
  for (let r = 0; r < ROUNDS; r++) {
    const got = {} as Record<SideName, number>
    for (let i = 0; i < NAMES.length; i++) {
      const name = NAMES[(i + r) % NAMES.length]
      gc()
      rates[name].push((got[name] = rate(name, chunks, events)))
    }
    ours.push(got.ours / got.baseline)
    fallback.push(got.oursNoTextDecoder / got.baseline)
  }
  const spread = (values: number[]) => [round(Math.min(...values), 3), round(Math.max(...values), 3)]
  return {
    chunks: label,
    chunkCount: chunks.length,
    baselineEventsPerSec: Math.round(median(rates.baseline)),
    oursEventsPerSec: Math.round(median(rates.ours)),
    ratio: round(median(ours), 3),
    ratioRange: spread(ours),
    phonesWithoutTextDecoder: {
      oursEventsPerSec: Math.round(median(rates.oursNoTextDecoder)),
      ratio: round(median(fallback), 3),
      ratioRange: spread(fallback),
    },
  }
}

// ---- correctness -------------------------------------------------------------------------------------------------

/** Events a side dispatched that match the stream's own event of that id exactly, and those that do not. */
function score(make: (onEvent: (event: Got) => void) => Sink, chunks: Uint8Array[], expected: Got[]) {
  const got: Got[] = []
  const sink = make((event) => got.push(event))
  for (const chunk of chunks) sink.feed(chunk)
  sink.end()
  let right = 0
  for (const event of got) {
    const want = expected[Number(event.id) - 1]
    if (want && want.id === event.id && want.type === event.type && want.data === event.data) right++
  }
  return { dispatched: got.length, right, wrong: got.length - right, missed: expected.length - right }
}

function correctness(name: string, bytes: Uint8Array, expected: Got[], seed: number) {
  const chunks = cut(bytes, 1, 64, seed)
  return {
    stream: name,
    events: expected.length,
    chunkBoundaries: splits(chunks),
    ours: score(createOurs, chunks, expected),
    oursNoTextDecoder: score(createOursNoTextDecoder, chunks, expected),
    baseline: score(createBaseline, chunks, expected),
  }
}

// ---- size --------------------------------------------------------------------------------------------------------

const CORE_SCRIPT = `import { createConnection } from '@/uni_modules/longlink-socket/js_sdk/index'
const connection = createConnection({ url: 'wss://example.com/ws' })
const label = ref(connection.state)
connection.on('message', (data) => (label.value = String(data)))
connection.open().then(() => connection.send('hi'))`

const SSE_SCRIPT = (label: string) => `import { createEventSource } from '@/uni_modules/longlink-socket/js_sdk/sse'
const source = createEventSource('https://example.com/events')
const ${label} = ref(String(source.readyState))
source.on('message', (event) => (${label}.value = event.data))`

function size() {
  const alone = bundleDelta(SSE_SCRIPT('label'), 'sse')
  const core = buildWithPage(page(CORE_SCRIPT), 'core-only')
  const both = buildWithPage(page(`${CORE_SCRIPT}\n${SSE_SCRIPT('label2')}`), 'core-sse')
  const marginal = both.gzip - core.gzip
  return {
    standalone: {
      note: 'a page using createEventSource alone (with the core supervisor and option rules it shares)',
      addedMinifiedBytes: alone.addedMinified,
      addedGzipBytes: alone.addedGzip,
    },
    onTopOfCore: {
      note: 'core + SSE page minus core-only page',
      addedMinifiedBytes: both.minified - core.minified,
      addedGzipBytes: marginal,
      target: '<= 4096 gzip bytes (4 KiB)',
      pass: marginal <= 4096,
    },
  }
}

/** Runs every SSE benchmark and returns the figures. */
export async function benchSse() {
  entry = await compileAndImport<SseEntry>('sse', 'uni_modules/longlink-socket/js_sdk/sse.ts')
  if (!readsGlobalTextDecoder()) throw new Error('the parser did not read globalThis.TextDecoder: the fallback cannot be selected')
  const { bytes, expected } = makeStream(EVENTS)
  const large = throughput('1–16 KiB', cut(bytes, 1024, 16 * 1024, 7), EVENTS)
  const small = throughput('1–64 B', cut(bytes, 1, 64, 11), EVENTS)
  const allCrlf = makeStream(20_000, 1)
  const ratio = Math.min(large.ratio, small.ratio)
  return {
    stream: {
      events: EVENTS,
      bytes: bytes.length,
      mix: 'id + event (most) + data (ASCII / Chinese / JSON, 20% multi-line), a comment every 20 events, 1/4 in CRLF',
      eventsPerSec: 'events the stream holds / time to feed every chunk and end (both sides)',
    },
    throughput: { large, small, target: 'ratio >= 0.8 (both chunkings)', pass: ratio >= 0.8 },
    correctness: [correctness('the stream above', bytes, expected, 13), correctness('20,000 events, all CRLF', allCrlf.bytes, allCrlf.expected, 17)],
    size: size(),
  }
}
