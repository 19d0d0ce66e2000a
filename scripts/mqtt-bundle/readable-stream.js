// The part of Node's streams the bundled MQTT.js client uses, in place of the `readable-stream` package (~80 KB
// minified with its helpers: every stream kind, pipeline, compose, async iteration, abort signals, string decoding).
// MQTT.js makes exactly two streams of its own: a Writable that feeds incoming bytes to its packet parser
// (client.js `connect()`), and an object-mode Readable over its in-flight store (store.js `createStream()`), which it
// drains with read(), 'readable' and 'end' when a session resumes. The socket-side duplex is the plugin's own
// (js_sdk/mqtt/stream.ts), and mqtt-packet writes packets to that one, so nothing here needs Duplex, Transform or pipe.
// scripts/vendor-mqtt.mjs refuses to build when any other module imports this one, so a new use in a later MQTT.js
// cannot silently meet a missing class.
//
// What is kept from Node's Writable, because MQTT.js's packet handling depends on it:
// - one `_write` at a time: a chunk written while the previous one is still being handled waits its turn, and the
//   next one starts from inside the previous one's `done` (in a loop, however many waited), as in Node;
// - write callbacks run in write order, after their chunk's `done`, on the next tick when `done` was synchronous;
// - `write()` returns false once the buffered bytes reach the high-water mark (16 KiB), and 'drain' follows, before
//   the callback of the write that emptied the buffer, as in Node;
// - `end()` waits for the writes in flight, then 'finish' and 'close'; `destroy(error)` fails the waiting writes,
//   then emits 'error' (with an error) and 'close', once, on the next tick.
import { Buffer } from 'buffer'
import { EventEmitter } from 'events'
import process from './process.js'

const noop = () => {}

/** An Error with a Node-style `code`, as the streams it stands in for report them. */
function codedError(message, code) {
  const error = new Error(message)
  error.code = code
  return error
}

/** Shared by both stream kinds: `destroy(error)` reports 'error' (when given one) then 'close', once, next tick. */
function destroyStream(stream, error) {
  if (stream.destroyed) return stream
  stream.destroyed = true
  process.nextTick(() => {
    if (error) stream.emit('error', error)
    stream.emit('close')
  })
  return stream
}

/** A Node-style Writable: `_write(chunk, encoding, done)` (or the `write` option) handles one chunk at a time. */
export class Writable extends EventEmitter {
  /** @param {{ objectMode?: boolean, highWaterMark?: number, write?: Function }} [options] */
  constructor(options = {}) {
    super()
    if (typeof options.write === 'function') this._write = options.write
    this._objectMode = !!options.objectMode
    this._highWaterMark = options.highWaterMark ?? (this._objectMode ? 16 : 16384)
    /** Chunks written while another was being handled: `{ chunk, encoding, callback }`. */
    this._buffered = []
    this._writing = false
    /** _clearBuffer() is running (a chunk it handed over finished synchronously). */
    this._clearing = false
    /** Callbacks of `end()`, called on 'finish' (or with the error if the stream fails first). */
    this._onFinished = []
    /** Bytes (or objects) written and not yet handled, as Node counts them. */
    this.writableLength = 0
    /** `write()` returned false and 'drain' has not followed yet. */
    this.writableNeedDrain = false
    this.writableEnded = false
    this.writableFinished = false
    this.destroyed = false
    /** The error the stream was destroyed with: what the writes still waiting fail with. */
    this._errored = undefined
  }

  _write() {
    throw codedError('The _write() method is not implemented', 'ERR_METHOD_NOT_IMPLEMENTED')
  }

  /**
   * Queues one chunk; `callback(error?)` runs once it was handled. Returns false when the caller should wait for
   * 'drain' before writing more.
   */
  write(chunk, encoding, callback) {
    if (typeof encoding === 'function') {
      callback = encoding
      encoding = undefined
    }
    callback = callback || noop
    if (this.writableEnded || this.destroyed) {
      const error = this.destroyed
        ? codedError('Cannot call write after a stream was destroyed', 'ERR_STREAM_DESTROYED')
        : codedError('write after end', 'ERR_STREAM_WRITE_AFTER_END')
      process.nextTick(callback, error)
      this.destroy(error)
      return false
    }
    if (!this._objectMode && typeof chunk === 'string') {
      // Node hands `_write` bytes, not text (its default decodeStrings).
      chunk = Buffer.from(chunk, encoding || 'utf8')
      encoding = 'buffer'
    }
    this.writableLength += this._objectMode ? 1 : chunk.length
    const ok = this.writableLength < this._highWaterMark
    if (!ok) this.writableNeedDrain = true
    if (this._writing) this._buffered.push({ chunk, encoding, callback })
    else this._doWrite(chunk, encoding, callback)
    return ok
  }

  _doWrite(chunk, encoding, callback) {
    const length = this._objectMode ? 1 : chunk.length
    let sync = true
    let called = false
    this._writing = true
    const done = (error) => {
      if (called) {
        this.destroy(codedError('Callback called multiple times', 'ERR_MULTIPLE_CALLBACK'))
        return
      }
      called = true
      this._writing = false
      this.writableLength -= length
      if (error) {
        // As in Node: the write's own callback gets the error before the stream reports it.
        const fail = () => {
          callback(error)
          this._errored = this._errored || error
          this._failBuffered()
          this.destroy(error)
        }
        if (sync) process.nextTick(fail)
        else fail()
        return
      }
      this._clearBuffer()
      if (sync) process.nextTick(() => this._afterWrite(callback))
      else this._afterWrite(callback)
    }
    try {
      this._write(chunk, encoding, done)
    } finally {
      sync = false
    }
  }

  /**
   * Hands the waiting chunks to `_write` in a loop, not by recursion: a burst of messages that waited for one slow
   * packet handler, each then handled synchronously, would otherwise nest one stack frame chain per chunk.
   */
  _clearBuffer() {
    if (this._clearing) return
    this._clearing = true
    while (this._buffered.length && !this._writing && !this.destroyed) {
      const next = this._buffered.shift()
      this._doWrite(next.chunk, next.encoding, next.callback)
    }
    this._clearing = false
  }

  _afterWrite(callback) {
    if (this.writableNeedDrain && this.writableLength === 0 && !this.writableEnded && !this.destroyed) {
      this.writableNeedDrain = false
      this.emit('drain')
    }
    // A chunk handled while the stream was being destroyed still reports success: it was handled.
    callback()
    if (this.destroyed) this._failBuffered()
    else this._finishMaybe()
  }

  /** Callbacks of writes that never reached `_write`, and of `end()`, fail: the stream's error, or "destroyed". */
  _failBuffered() {
    if (this._writing) return
    const error = this._errored || codedError('Cannot call write after a stream was destroyed', 'ERR_STREAM_DESTROYED')
    for (const { chunk, callback } of this._buffered.splice(0)) {
      this.writableLength -= this._objectMode ? 1 : chunk.length
      callback(error)
    }
    for (const callback of this._onFinished.splice(0)) callback(error)
  }

  /** After every write was handled: 'finish', then 'close'. `callback` runs on 'finish' (or with an error). */
  end(chunk, encoding, callback) {
    if (typeof chunk === 'function') {
      callback = chunk
      chunk = undefined
    } else if (typeof encoding === 'function') {
      callback = encoding
      encoding = undefined
    }
    if (chunk !== undefined && chunk !== null) this.write(chunk, encoding)
    if (typeof callback === 'function') {
      if (this.writableFinished || this.destroyed) {
        process.nextTick(callback, this.destroyed ? codedError('Cannot call end after a stream was destroyed', 'ERR_STREAM_DESTROYED') : undefined)
      } else this._onFinished.push(callback)
    }
    if (!this.writableEnded && !this.destroyed) {
      this.writableEnded = true
      // 'finish' is never emitted in the same tick as end(), as in Node.
      process.nextTick(() => this._finishMaybe())
    }
    return this
  }

  _finishMaybe() {
    if (!this.writableEnded || this.writableFinished || this.destroyed || this._writing || this.writableLength > 0) return
    this.writableFinished = true
    for (const callback of this._onFinished.splice(0)) callback()
    this.emit('finish')
    // autoDestroy, as Node's streams default to: a finished stream closes.
    this.destroy()
  }

  /** Stops the stream: waiting writes fail; 'error' (when `error` is given) then 'close' follow, once, next tick. */
  destroy(error) {
    if (this.destroyed) return this
    this._errored = error
    // A chunk being handled finishes first (its `done` fails the rest); otherwise the waiting writes fail next tick.
    if (this._buffered.length || this._onFinished.length) process.nextTick(() => this._failBuffered())
    return destroyStream(this, error)
  }
}

/**
 * An object-mode Readable, as MQTT.js's store makes one: `_read()` (or the `read` option) pushes items, `push(null)`
 * ends it. `read()` returns the next item or null; after a null, 'readable' says more came (or the end did), and
 * 'end' follows the read that found the stream ended and empty.
 */
export class Readable extends EventEmitter {
  /** @param {{ objectMode?: boolean, read?: Function }} [options] */
  constructor(options = {}) {
    super()
    if (typeof options.read === 'function') this._read = options.read
    this._items = []
    this._ended = false
    this._endEmitted = false
    this._needReadable = false
    this.destroyed = false
  }

  _read() {
    throw codedError('The _read() method is not implemented', 'ERR_METHOD_NOT_IMPLEMENTED')
  }

  /** Adds one item (null ends the stream). Returns whether the reader may take more. */
  push(item) {
    if (this._ended || this.destroyed) return false
    if (item === null) this._ended = true
    else this._items.push(item)
    if (this._needReadable) {
      this._needReadable = false
      process.nextTick(() => !this.destroyed && this.emit('readable'))
    }
    return !this._ended
  }

  /** The next item, asking `_read()` for one when none waits; null when none is there (yet). */
  read() {
    if (this.destroyed) return null
    if (!this._items.length && !this._ended) this._read()
    if (this._items.length) return this._items.shift()
    if (this._ended) {
      if (!this._endEmitted) {
        this._endEmitted = true
        process.nextTick(() => !this.destroyed && this.emit('end'))
      }
    } else this._needReadable = true
    return null
  }

  /** Stops the stream; 'error' (when given one) then 'close' follow, once, next tick. */
  destroy(error) {
    return destroyStream(this, error)
  }
}

export default { Writable, Readable }
