// Types of the streams shim (readable-stream.js beside this file), for the tests that exercise it directly.
import { EventEmitter } from 'events'

/** A Node-style Writable: one `_write` at a time, callbacks in order, 'drain', 'finish', 'close' and 'error'. */
export declare class Writable extends EventEmitter {
  constructor(options?: {
    objectMode?: boolean
    highWaterMark?: number
    write?: (this: Writable, chunk: unknown, encoding: string | undefined, done: (error?: Error | null) => void) => void
  })
  _write(chunk: unknown, encoding: string | undefined, done: (error?: Error | null) => void): void
  write(chunk: unknown, callback?: (error?: Error | null) => void): boolean
  write(chunk: unknown, encoding?: string, callback?: (error?: Error | null) => void): boolean
  end(callback?: (error?: Error | null) => void): this
  end(chunk: unknown, callback?: (error?: Error | null) => void): this
  destroy(error?: Error): this
  readonly writableLength: number
  readonly writableNeedDrain: boolean
  readonly writableEnded: boolean
  readonly writableFinished: boolean
  readonly destroyed: boolean
}

/** An object-mode Readable: `_read()` pushes items, `push(null)` ends it, `read()` takes the next one. */
export declare class Readable extends EventEmitter {
  constructor(options?: { objectMode?: boolean; read?: (this: Readable) => void })
  _read(): void
  push(item: unknown): boolean
  read(size?: number): unknown
  destroy(error?: Error): this
  readonly destroyed: boolean
}

declare const streams: { Writable: typeof Writable; Readable: typeof Readable }
export default streams
