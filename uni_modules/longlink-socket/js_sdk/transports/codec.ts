/**
 * The session protocol's packets (docs/session-protocol.md): `{ seq, m, ack }`, where each item of `m` is a string
 * (text), `{ b: base64 }` (bytes) or `{ close: [code, reason] }`. Base64 by hand: `btoa` is missing in mini-programs
 * and `wx.arrayBufferToBase64` is deprecated.
 */
import { fail } from '../errors'
import type { WireData } from '../transport'

/** One item of a packet's `m`. */
export type Item = string | { b: string } | { close: [number, string] }

/** What travels in a body, a frame or an SSE event. */
export interface Packet {
  seq?: number
  m?: Item[]
  ack?: number
  hello?: number
  upgrade?: number
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
/** Character code → 6-bit value (255: not base64). */
const VALUES = new Uint8Array(128).fill(255)
for (let i = 0; i < 64; i++) VALUES[ALPHABET.charCodeAt(i)] = i

/** Standard base64 with padding. */
export function toBase64(buffer: ArrayBuffer): string {
  const bytes = new Uint8Array(buffer)
  let out = ''
  let i = 0
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]! + ALPHABET[n & 63]!
  }
  const rest = bytes.length - i
  if (rest) {
    const n = (bytes[i]! << 16) | (rest === 2 ? bytes[i + 1]! << 8 : 0)
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + (rest === 2 ? ALPHABET[(n >> 6) & 63]! : '=') + '='
  }
  return out
}

/** The bytes of standard base64 (padding optional); throws on anything else. */
export function fromBase64(text: string): ArrayBuffer {
  const clean = text.replace(/=+$/, '')
  if (clean.length % 4 === 1) throw new Error('bad base64 length')
  const out = new Uint8Array((clean.length * 3) >> 2)
  let bits = 0
  let value = 0
  let o = 0
  for (let i = 0; i < clean.length; i++) {
    const code = clean.charCodeAt(i)
    const v = code < 128 ? VALUES[code]! : 255
    if (v === 255) throw new Error('bad base64 character')
    value = (value << 6) | v
    bits += 6
    if (bits >= 8) {
      bits -= 8
      out[o++] = (value >> bits) & 255
    }
  }
  return out.buffer
}

/** A message as an item. */
export function toItem(data: WireData): Item {
  return typeof data === 'string' ? data : { b: toBase64(data) }
}

/** Parses a packet; throws a protocol error (CONNECT_FAILED) for anything that is not one. */
export function parsePacket(text: string): Packet {
  let packet: unknown
  try {
    packet = JSON.parse(text)
  } catch {
    packet = undefined
  }
  const p = packet as Packet
  if (!p || typeof p !== 'object' || Array.isArray(p) || (p.m !== undefined && (!Array.isArray(p.m) || typeof p.seq !== 'number'))) {
    throw fail('CONNECT_FAILED', `not a LongLink packet: ${String(text).slice(0, 60)}`)
  }
  return p
}
