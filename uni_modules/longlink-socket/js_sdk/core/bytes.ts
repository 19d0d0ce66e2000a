import type { WireData } from '../transport'

const toString = Object.prototype.toString

/**
 * ArrayBuffer test that also holds for buffers crossing from the host runtime (WeChat DevTools hands some over
 * with an altered prototype, so `instanceof` fails).
 */
export function isArrayBuffer(value: unknown): value is ArrayBuffer {
  return toString.call(value) === '[object ArrayBuffer]'
}

/** A typed array or DataView (Node Buffers included). */
export function isView(value: unknown): value is ArrayBufferView {
  return ArrayBuffer.isView(value)
}

/**
 * The bytes a view covers, as a fresh ArrayBuffer. Sending `view.buffer` instead would send the whole
 * underlying buffer (a known MQTT.js `wx://` bug) — wrong bytes for a subarray or a pooled Node Buffer.
 */
export function viewBytes(view: ArrayBufferView): ArrayBuffer {
  const { buffer, byteOffset, byteLength } = view
  if (byteOffset === 0 && byteLength === buffer.byteLength && isArrayBuffer(buffer)) return buffer as ArrayBuffer
  return (buffer as ArrayBuffer).slice(byteOffset, byteOffset + byteLength)
}

/**
 * Wire data from anything a platform or a caller hands over: text stays text, ArrayBuffers stay as they are,
 * views become exactly their bytes, and anything else becomes text.
 */
export function toWire(data: unknown): WireData {
  if (typeof data === 'string' || isArrayBuffer(data)) return data
  return isView(data) ? viewBytes(data) : String(data)
}

/**
 * Matches all-ASCII text. Kept in one module-level object: a regex literal inside a function builds a new
 * RegExp on every call, about a microsecond per message on a busy link (see bench/).
 */
// eslint-disable-next-line no-control-regex -- U+0000 is ASCII too: the whole 7-bit range is the point.
const ASCII = /^[\x00-\x7f]*$/

/** UTF-8 length of a string, without TextEncoder (missing on some mini-program phones). */
export function utf8Length(text: string): number {
  // Most protocol text is ASCII: one native regex test beats the loop below.
  if (ASCII.test(text)) return text.length
  // One byte per UTF-16 unit to start with, plus what each wider character needs on top.
  let bytes = text.length
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c > 0x7f) bytes += c > 0x7ff ? 2 : 1
    // A surrogate pair takes 4 bytes for its 2 units, so its second unit adds nothing. A lone surrogate is sent as
    // the 3-byte U+FFFD.
    if (c >= 0xd800 && c < 0xdc00 && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) i++
  }
  return bytes
}

/** Bytes a wire message occupies (payload only). */
export function wireLength(data: WireData): number {
  return typeof data === 'string' ? utf8Length(data) : data.byteLength
}
