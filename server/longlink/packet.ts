/**
 * Messages and packets as the session protocol writes them (docs/session-protocol.md): an item is a JSON string (text),
 * `{"b": base64}` (bytes) or `{"close": [code, reason]}`; a packet is `{"seq", "m", "ack"}`. Parsing checks the whole
 * packet before anything is applied, so a bad item never leaves half a packet taken.
 */
import { LongLinkError } from './errors'

/** What `conn.send` accepts. */
export type SendData = string | Uint8Array | ArrayBuffer | ArrayBufferView

/** A message as it travels: text, or bytes. */
export type Message = string | Uint8Array

/** A message from the peer: text, bytes, or its close. */
export type Item = { kind: 'text'; text: string } | { kind: 'bytes'; bytes: Uint8Array } | { kind: 'close'; code: number; reason: string }

export interface Packet {
  /** The number of the first item of `m` (present whenever `m` has items). */
  seq?: number
  m: Item[]
  ack?: number
}

/** Normalizes what `send` was given; throws `INVALID_DATA` for anything else. */
export function toMessage(data: unknown): Message {
  if (typeof data === 'string') return data
  if (data instanceof Uint8Array) return data
  if (data instanceof ArrayBuffer) return new Uint8Array(data)
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  throw new LongLinkError('INVALID_DATA', 'send takes a string, a Uint8Array, an ArrayBuffer or an ArrayBufferView')
}

/** Bytes a message counts for in the buffer bounds. */
export function messageSize(message: Message): number {
  return typeof message === 'string' ? Buffer.byteLength(message) : message.byteLength
}

/** A message as the JSON of its item. */
export function encodeItem(message: Message): string {
  if (typeof message === 'string') return JSON.stringify(message)
  const b = Buffer.from(message.buffer, message.byteOffset, message.byteLength).toString('base64')
  return `{"b":"${b}"}`
}

export function encodeCloseItem(code: number, reason: string): string {
  return JSON.stringify({ close: [code, reason] })
}

/** A packet's JSON from already encoded items. */
export function encodePacket(seq: number, items: string[], ack: number): string {
  return `{"seq":${seq},"m":[${items.join(',')}],"ack":${ack}}`
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
/** Close reasons are bounded as a WebSocket's are (123 bytes), with room for clients that count characters. */
const MAX_REASON_CHARS = 123

export const isCounter = (v: unknown, min: number): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= min

/** A close code an endpoint may send: 1000, or 3000–4999 (application codes). */
export const isAppCloseCode = (code: unknown): code is number => code === 1000 || (isCounter(code, 3000) && code <= 4999)

function parseItem(raw: unknown, last: boolean): Item | string {
  if (typeof raw === 'string') return { kind: 'text', text: raw }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return 'an item must be a string or an object'
  const o = raw as Record<string, unknown>
  if ('b' in o) {
    if (typeof o.b !== 'string' || !BASE64.test(o.b)) return '"b" must be standard base64'
    return { kind: 'bytes', bytes: Buffer.from(o.b, 'base64') }
  }
  if ('close' in o) {
    const c = o.close
    if (!Array.isArray(c) || !isCounter(c[0], 1000) || c[0] > 4999 || typeof c[1] !== 'string' || c[1].length > MAX_REASON_CHARS) {
      return '"close" must be [code 1000–4999, reason of at most 123 characters]'
    }
    if (!last) return 'a close item must be the last item'
    return { kind: 'close', code: c[0], reason: c[1] }
  }
  return 'an object item must have "b" or "close"'
}

/** Checks a parsed JSON value as a packet; returns it, or a message saying what is wrong. */
export function parsePacket(value: unknown): Packet | string {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return 'a packet must be a JSON object'
  const o = value as Record<string, unknown>
  const packet: Packet = { m: [] }
  if (o.ack !== undefined) {
    if (!isCounter(o.ack, 0)) return '"ack" must be an integer ≥ 0'
    packet.ack = o.ack
  }
  if (o.m !== undefined) {
    if (!Array.isArray(o.m)) return '"m" must be an array'
    if (!isCounter(o.seq, 1)) return '"seq" must be an integer ≥ 1 when "m" is present'
    if (!Number.isSafeInteger(o.seq + o.m.length)) return '"seq" is too large'
    packet.seq = o.seq
    for (let i = 0; i < o.m.length; i++) {
      const item = parseItem(o.m[i], i === o.m.length - 1)
      if (typeof item === 'string') return item
      packet.m.push(item)
    }
  } else if (o.seq !== undefined && !isCounter(o.seq, 1)) return '"seq" must be an integer ≥ 1'
  return packet
}

/** Parses JSON text as a packet; a message saying what is wrong otherwise. */
export function parsePacketText(text: string): Packet | string {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return 'not JSON'
  }
  return parsePacket(value)
}
