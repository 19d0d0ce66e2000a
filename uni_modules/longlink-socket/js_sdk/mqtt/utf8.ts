/**
 * UTF-8 without TextEncoder/TextDecoder: WeChat DevTools has them, many phones do not. Invalid input decodes to
 * U+FFFD, as TextDecoder would.
 */
export function utf8Encode(text: string): Uint8Array {
  const out: number[] = []
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i)
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1)
      if (next >= 0xdc00 && next <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00)
        i++
      }
    }
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd // a lone surrogate
    if (c < 0x80) out.push(c)
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63))
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63))
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63))
  }
  return new Uint8Array(out)
}

/** Decodes UTF-8 bytes to text. */
export function utf8Decode(bytes: Uint8Array): string {
  let out = ''
  for (let i = 0; i < bytes.length;) {
    const b = bytes[i]!
    let needed = b < 0x80 ? 0 : b >= 0xc2 && b < 0xe0 ? 1 : b >= 0xe0 && b < 0xf0 ? 2 : b >= 0xf0 && b < 0xf5 ? 3 : -1
    let code = needed === 0 ? b : needed === 1 ? b & 31 : needed === 2 ? b & 15 : b & 7
    let j = 1
    for (; needed > 0 && j <= needed; j++) {
      const next = bytes[i + j]
      if (next === undefined || (next & 0xc0) !== 0x80) {
        needed = -1
        break
      }
      code = (code << 6) | (next & 63)
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid too.
    if (
      needed < 0 ||
      (needed === 2 && (code < 0x800 || (code >= 0xd800 && code <= 0xdfff))) ||
      (needed === 3 && (code < 0x10000 || code > 0x10ffff))
    ) {
      out += '\ufffd'
      i += 1
      continue
    }
    out += code > 0xffff ? String.fromCharCode(0xd800 + ((code - 0x10000) >> 10), 0xdc00 + ((code - 0x10000) & 1023)) : String.fromCharCode(code)
    i += j
  }
  return out
}
