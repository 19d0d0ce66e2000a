/** UTF-8 decoding of a byte stream that arrives in chunks split at arbitrary bytes. */
export interface Utf8StreamDecoder {
  /** Decodes one chunk; the bytes of a character cut at its end are kept for the next call. */
  decode(chunk: Uint8Array): string
  /** The stream ended: an unfinished character becomes U+FFFD. The decoder is then ready for a new stream. */
  flush(): string
}

interface NativeDecoder {
  decode(input?: Uint8Array, options?: { stream: boolean }): string
}
// Declared here rather than taken from the DOM lib: the plugin is type-checked without it, and many mini-program
// runtimes have no TextDecoder at all (typeof is the only safe test for an undeclared global).
declare const TextDecoder: (new (label: string, options: { ignoreBOM: boolean }) => NativeDecoder) | undefined

const STREAM = { stream: true }

/** A TextDecoder that does what the stream needs, or undefined. */
function nativeDecoder(): NativeDecoder | undefined {
  if (typeof TextDecoder !== 'function') return
  try {
    // A polyfill may ignore `stream` or `ignoreBOM`: a BOM and a character cut between two calls must survive.
    const probe = new TextDecoder('utf-8', { ignoreBOM: true })
    if (probe.decode(new Uint8Array([0xef, 0xbb, 0xbf, 0xe4]), STREAM) + probe.decode(new Uint8Array([0xb8, 0xad])) === '\ufeff\u4e2d') {
      return new TextDecoder('utf-8', { ignoreBOM: true })
    }
  } catch {
    // An implementation that rejects the label or the options: decode by hand.
  }
}

/**
 * A UTF-8 stream decoder that never throws: invalid input becomes U+FFFD exactly as the WHATWG decoder does
 * (`TextDecoder` with `fatal: false`: one U+FFFD per maximal subpart of an ill-formed sequence). A BOM is kept.
 * Uses the runtime's TextDecoder when it has a working one, else decodes by hand.
 */
export function createUtf8StreamDecoder(): Utf8StreamDecoder {
  const native = nativeDecoder()
  if (native) return { decode: (chunk) => native.decode(chunk, STREAM), flush: () => native.decode() }

  // The WHATWG UTF-8 decoder's state: continuation bytes still needed, seen so far, the code point so far, and the
  // range the next byte must fall in (narrower after E0, ED, F0, F4, which is what rules out overlong forms,
  // surrogates and values past U+10FFFF).
  let needed = 0
  let seen = 0
  let code = 0
  let lower = 0x80
  let upper = 0xbf
  // UTF-16 code units, reused: a chunk of n bytes makes at most n + 1 of them (the +1: a character begun in the
  // previous chunk that this chunk's first byte completes as a surrogate pair, or breaks and then starts over).
  let units = new Uint16Array(0)

  return {
    decode(chunk) {
      const length = chunk.length
      if (units.length <= length) units = new Uint16Array(length + 1)
      let out = 0
      for (let i = 0; i < length; i++) {
        const byte = chunk[i]!
        if (needed === 0) {
          if (byte < 0x80) units[out++] = byte
          else if (byte >= 0xc2 && byte <= 0xdf) {
            needed = 1
            code = byte & 0x1f
          } else if (byte >= 0xe0 && byte <= 0xef) {
            if (byte === 0xe0) lower = 0xa0
            else if (byte === 0xed) upper = 0x9f
            needed = 2
            code = byte & 0xf
          } else if (byte >= 0xf0 && byte <= 0xf4) {
            if (byte === 0xf0) lower = 0x90
            else if (byte === 0xf4) upper = 0x8f
            needed = 3
            code = byte & 7
          } else units[out++] = 0xfffd
        } else if (byte < lower || byte > upper) {
          // The sequence so far is one U+FFFD, and this byte starts over: it may begin a character of its own.
          needed = seen = 0
          lower = 0x80
          upper = 0xbf
          units[out++] = 0xfffd
          i--
        } else {
          lower = 0x80
          upper = 0xbf
          code = (code << 6) | (byte & 0x3f)
          if (++seen === needed) {
            if (code > 0xffff) {
              code -= 0x10000
              units[out++] = 0xd800 | (code >> 10)
              units[out++] = 0xdc00 | (code & 0x3ff)
            } else units[out++] = code
            needed = seen = 0
          }
        }
      }
      let text = ''
      // In slices: fromCharCode.apply takes one argument per unit, and engines cap the argument count.
      for (let i = 0; i < out; i += 0x2000)
        text += String.fromCharCode.apply(null, units.subarray(i, Math.min(i + 0x2000, out)) as unknown as number[])
      return text
    },
    flush() {
      const rest = needed ? '\ufffd' : ''
      needed = seen = 0
      lower = 0x80
      upper = 0xbf
      return rest
    },
  }
}
