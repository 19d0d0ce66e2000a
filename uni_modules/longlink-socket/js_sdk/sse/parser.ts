/**
 * The `text/event-stream` parser: bytes in, events out, as the WHATWG HTML standard interprets an event stream
 * (§9.2.6). No I/O: the transport feeds it the response body and acts on what it reports.
 */
import { createUtf8StreamDecoder, type Utf8StreamDecoder } from './decoder'

/** One dispatched event, with what an EventSource's MessageEvent would carry. */
export interface SseEvent {
  /** The block's `event` field; `'message'` when it had none or an empty one. */
  type: string
  /** The block's `data` lines joined with '\n'. */
  data: string
  /** The last event id after this block: its own `id`, or the one an earlier block set. */
  lastEventId: string
  /** Present when this block itself set the id (an `id` field without U+0000), even to ''. */
  id?: string
}

/** What the parser reports, in stream order. */
export interface SseParserHandlers {
  /** A dispatched event (a block with at least one `data` line, ended by an empty line). */
  event(event: SseEvent): void
  /** A valid `retry` field (ASCII digits only). */
  retry?(ms: number): void
  /** Any line starting with ':' (keep-alive); not dispatched. */
  comment?(): void
}

/**
 * A parser for one event source. Handlers run inside `feed` and `end`; one that throws makes that call throw, but the
 * parser has already moved past the line that called it: the lines after it that were already received are parsed
 * on the next `feed` (or `end`), so nothing is lost or parsed twice.
 */
export interface SseParser {
  /** Feeds raw bytes of the response body. */
  feed(chunk: Uint8Array): void
  /** The stream ended: an unfinished event is dropped (its id not committed). Ready for a new stream (reset), even if a handler throws. */
  end(): void
  /**
   * Starts a new stream (next bytes may start with a BOM again); the committed last event id is kept, anything not yet
   * dispatched or parsed is dropped.
   */
  reset(): void
  /** The last event id committed (at dispatch time, as the spec says — even for a block with no data). */
  readonly lastEventId: string
}

const DIGITS = /^\d+$/

/**
 * Creates a parser. `lastEventId` is the id committed before the first stream (from an earlier connection, say).
 */
export function createSseParser(handlers: SseParserHandlers, lastEventId = ''): SseParser {
  let decoder: Utf8StreamDecoder
  let atStart: boolean // no text yet in this stream: a BOM may come
  let afterCR: boolean // the last text ended with a CR: an LF starting the next one completes that line ending
  let partial: string // an unterminated line
  let backlog: string // received text a throwing handler left unparsed
  let idBuffer: string // the spec's last event ID buffer: survives dispatch, committed by it
  let blockId: string | undefined
  let type: string
  let data: string // the data lines joined with '\n': the spec's buffer without its trailing '\n'
  let hasData: boolean

  function reset() {
    decoder = createUtf8StreamDecoder()
    atStart = true
    afterCR = hasData = false
    partial = backlog = type = data = ''
    idBuffer = lastEventId
    blockId = undefined
  }

  function dispatch() {
    // The id is committed first, even by a block that dispatches nothing.
    lastEventId = idBuffer
    const event: SseEvent = { type: type || 'message', data, lastEventId }
    if (blockId !== undefined) event.id = blockId
    const send = hasData
    blockId = undefined
    type = data = ''
    hasData = false
    // Last, with the state ready for the next line: the handler may throw.
    if (send) handlers.event(event)
  }

  /** The line s[start, end); `colon` is the index of its first ':', or anything outside the line when it has none. */
  function line(s: string, start: number, end: number, colon: number) {
    if (start === end) return dispatch()
    if (colon === start) return handlers.comment && handlers.comment()
    let value = ''
    if (colon < start || colon >= end) colon = end
    // After "data:" at the end of the line, s[colon + 1] is the line ending or past the string: never a space.
    else value = s.slice(s.charCodeAt(colon + 1) === 32 ? colon + 2 : colon + 1, end)
    const length = colon - start
    if (length === 4 && s.startsWith('data', start)) {
      data = hasData ? data + '\n' + value : value
      hasData = true
    } else if (length === 5 && s.startsWith('event', start)) type = value
    else if (length === 2 && s.startsWith('id', start)) {
      if (value.indexOf('\0') < 0) idBuffer = blockId = value
    } else if (length === 5 && s.startsWith('retry', start) && DIGITS.test(value)) handlers.retry && handlers.retry(+value)
  }

  function scan(text: string) {
    const length = text.length
    let pos = 0
    // The next CR, LF and ':' at or after pos (-1: none left): each indexOf covers new ground, so a chunk is read
    // in linear time whatever its lines look like.
    let cr = -2
    let lf = -2
    let colon = -2
    try {
      if (afterCR && length) {
        afterCR = false
        if (text.charCodeAt(0) === 10) pos = 1
      }
      while (pos < length) {
        if (lf !== -1 && lf < pos) lf = text.indexOf('\n', pos)
        if (cr !== -1 && cr < pos) cr = text.indexOf('\r', pos)
        const end = lf < 0 ? cr : cr < 0 || lf < cr ? lf : cr
        if (end < 0) break
        const start = pos
        pos = end + 1
        if (end === cr) {
          if (pos === length) afterCR = true
          else if (text.charCodeAt(pos) === 10) pos++
        }
        if (partial) {
          const whole = partial + text.slice(start, end)
          partial = ''
          line(whole, 0, whole.length, whole.indexOf(':'))
        } else {
          if (colon !== -1 && colon < start) colon = text.indexOf(':', start)
          line(text, start, end, colon)
        }
      }
      partial += text.slice(pos)
      pos = length
    } finally {
      if (pos < length) backlog = text.slice(pos)
    }
  }

  reset()
  return {
    feed(chunk) {
      let text = decoder.decode(chunk)
      if (atStart && text) {
        atStart = false
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
      }
      if (backlog) {
        text = backlog + text
        backlog = ''
      }
      scan(text)
    },
    end() {
      // What is left of the decoder can only extend the unterminated line, which is dropped anyway.
      const rest = backlog
      backlog = ''
      try {
        scan(rest)
      } finally {
        reset()
      }
    },
    reset,
    get lastEventId() {
      return lastEventId
    },
  }
}
