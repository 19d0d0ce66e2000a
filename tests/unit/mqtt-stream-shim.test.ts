/**
 * The streams shim bundled into the vendored MQTT.js (scripts/mqtt-bundle/readable-stream.js) in place of Node's
 * streams. MQTT.js feeds every incoming byte through its Writable and resends its in-flight store through its
 * Readable, so each scenario here runs against Node's own `stream` module too and must give the same sequence of
 * callbacks and events: a callback lost or reordered would show up as a hung QoS 1 publish or a reconnect loop.
 */
import { Readable as NodeReadable, Writable as NodeWritable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { Readable as ShimReadable, Writable as ShimWritable } from '../../scripts/mqtt-bundle/readable-stream.js'

type Done = (error?: Error | null) => void
type WriteFn = (chunk: unknown, encoding: string | undefined, done: Done) => void
/** What the scenarios call, typed after the shim; Node's streams take the same calls. */
type WritableLike = Pick<ShimWritable, 'write' | 'end' | 'destroy' | 'on'>
type ReadableLike = Pick<ShimReadable, 'push' | 'read' | 'destroy' | 'on' | 'once'>

/** Both implementations behind one constructor shape. */
const writables: [string, (options: { highWaterMark?: number; write: WriteFn }) => WritableLike][] = [
  ['the shim', (options) => new ShimWritable(options)],
  ["Node's stream", (options) => new NodeWritable(options) as unknown as WritableLike],
]

const readables: [string, (read: (this: ReadableLike) => void) => ReadableLike][] = [
  ['the shim', (read) => new ShimReadable({ objectMode: true, read })],
  ["Node's stream", (read) => new NodeReadable({ objectMode: true, read: read as () => void }) as unknown as ReadableLike],
]

const bytes = (text: string) => new TextEncoder().encode(text)
const text = (chunk: unknown) => new TextDecoder().decode(chunk as Uint8Array)

/** Lets every pending nextTick, microtask and immediate run. */
const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve))
}

/** Records the stream's events, with the error's code for 'error'. */
function recordEvents(stream: WritableLike | ReadableLike, log: string[], events = ['drain', 'finish', 'close', 'error']) {
  for (const event of events)
    stream.on(event, (error?: unknown) => log.push(event === 'error' ? `error ${(error as { code?: string }).code}` : event))
}

/** A writable whose `done` for each chunk is called by the test; tracks how many chunks are in `_write` at once. */
function heldWrites(make: (typeof writables)[number][1], log: string[], highWaterMark?: number) {
  const held: Done[] = []
  let inWrite = 0
  let mostAtOnce = 0
  const stream = make({
    highWaterMark,
    write(chunk, _encoding, done) {
      inWrite++
      mostAtOnce = Math.max(mostAtOnce, inWrite)
      log.push(`handle ${text(chunk)}`)
      held.push((error) => {
        inWrite--
        done(error)
      })
    },
  })
  return {
    stream,
    held,
    mostAtOnce: () => mostAtOnce,
    /** Finishes the oldest chunk being handled. */
    finishOne: (error?: Error) => held.shift()!(error),
  }
}

describe.each(writables)('Writable: %s', (_name, make) => {
  it('hands chunks to _write one at a time and calls the write callbacks in order', async () => {
    const log: string[] = []
    const w = heldWrites(make, log)
    for (const chunk of ['a', 'b', 'c']) w.stream.write(bytes(chunk), (error) => log.push(`callback ${chunk}${error ? ' failed' : ''}`))
    expect(log).toEqual(['handle a'])
    while (w.held.length) {
      w.finishOne()
      await settle()
    }
    // The next chunk starts from inside the previous one's `done`, before that write's callback, as in Node.
    expect(log).toEqual(['handle a', 'handle b', 'callback a', 'handle c', 'callback b', 'callback c'])
    expect(w.mostAtOnce()).toBe(1)
  })

  it('handles a long queue of chunks that waited for one slow chunk without running out of stack', async () => {
    // What a burst of incoming messages behind one slow packet handler looks like: each later one is handled at once.
    const handled: number[] = []
    const called: number[] = []
    let release: Done | undefined
    const stream = make({
      write(chunk, _encoding, done) {
        handled.push((chunk as Uint8Array)[0]! + 256 * (chunk as Uint8Array)[1]!)
        if (!release) release = done
        else done()
      },
    })
    const count = 50_000
    for (let i = 0; i < count; i++) stream.write(new Uint8Array([i % 256, i >> 8]), () => called.push(i))
    release!()
    await settle()
    expect(handled).toEqual([...Array(count).keys()])
    expect(called).toEqual([...Array(count).keys()])
  })

  it('calls the callback of a write handled synchronously after write() returns, in order', async () => {
    const log: string[] = []
    const stream = make({
      write(chunk, _encoding, done) {
        log.push(`handle ${text(chunk)}`)
        done()
      },
    })
    stream.write(bytes('a'), () => log.push('callback a'))
    stream.write(bytes('b'), () => log.push('callback b'))
    log.push('returned')
    await settle()
    expect(log).toEqual(['handle a', 'handle b', 'returned', 'callback a', 'callback b'])
  })

  it('returns false past the high-water mark and emits drain once the buffer empties, before the last callback', async () => {
    const log: string[] = []
    const w = heldWrites(make, log, 4)
    recordEvents(w.stream, log)
    const accepted = ['ab', 'cd', 'ef'].map((chunk) => w.stream.write(bytes(chunk), () => log.push(`callback ${chunk}`)))
    expect(accepted).toEqual([true, false, false])
    while (w.held.length) {
      w.finishOne()
      await settle()
    }
    expect(log).toEqual(['handle ab', 'handle cd', 'callback ab', 'handle ef', 'callback cd', 'drain', 'callback ef'])
  })

  it('end(): finishes after the writes in flight, then emits finish and close, once', async () => {
    const log: string[] = []
    const w = heldWrites(make, log)
    recordEvents(w.stream, log)
    w.stream.write(bytes('a'), () => log.push('callback a'))
    w.stream.write(bytes('b'), () => log.push('callback b'))
    w.stream.end(() => log.push('end callback'))
    await settle()
    expect(log).toEqual(['handle a'])
    while (w.held.length) {
      w.finishOne()
      await settle()
    }
    expect(log).toEqual(['handle a', 'handle b', 'callback a', 'callback b', 'end callback', 'finish', 'close'])
  })

  it('a write after end() fails its callback and the stream with ERR_STREAM_WRITE_AFTER_END', async () => {
    const log: string[] = []
    const stream = make({ write: (_chunk, _encoding, done) => done() })
    recordEvents(stream, log)
    stream.end()
    const accepted = stream.write(bytes('late'), (error) => log.push(`callback ${(error as { code?: string }).code}`))
    await settle()
    expect(accepted).toBe(false)
    expect(log).toEqual(['callback ERR_STREAM_WRITE_AFTER_END', 'error ERR_STREAM_WRITE_AFTER_END', 'close'])
  })

  it('destroy(error): emits error then close, once; the chunk in flight completes, the waiting ones fail', async () => {
    const log: string[] = []
    const w = heldWrites(make, log)
    recordEvents(w.stream, log)
    const failure = Object.assign(new Error('link lost'), { code: 'LINK_LOST' })
    for (const chunk of ['a', 'b', 'c'])
      w.stream.write(bytes(chunk), (error) => log.push(`callback ${chunk}${error ? ` ${(error as { code?: string }).code}` : ''}`))
    w.stream.destroy(failure)
    w.stream.destroy(new Error('again'))
    await settle()
    expect(log).toEqual(['handle a', 'error LINK_LOST', 'close'])
    w.finishOne()
    await settle()
    expect(log).toEqual(['handle a', 'error LINK_LOST', 'close', 'callback a', 'callback b LINK_LOST', 'callback c LINK_LOST'])
    expect(w.held).toEqual([])
  })

  it('destroy() without an error emits close alone; later writes fail with ERR_STREAM_DESTROYED', async () => {
    const log: string[] = []
    const stream = make({ write: (_chunk, _encoding, done) => done() })
    recordEvents(stream, log)
    stream.destroy()
    stream.write(bytes('late'), (error) => log.push(`callback ${(error as { code?: string }).code}`))
    await settle()
    expect(log).toEqual(['close', 'callback ERR_STREAM_DESTROYED'])
  })

  it('a failed _write fails its own callback first, then the waiting writes, then emits error and close', async () => {
    const log: string[] = []
    const w = heldWrites(make, log)
    recordEvents(w.stream, log)
    const failure = Object.assign(new Error('bad packet'), { code: 'BAD_PACKET' })
    for (const chunk of ['a', 'b'])
      w.stream.write(bytes(chunk), (error) => log.push(`callback ${chunk}${error ? ` ${(error as { code?: string }).code}` : ''}`))
    w.finishOne(failure)
    await settle()
    expect(log).toEqual(['handle a', 'callback a BAD_PACKET', 'callback b BAD_PACKET', 'error BAD_PACKET', 'close'])
  })
})

describe.each(readables)('object-mode Readable, read the way MQTT.js resends its store: %s', (_name, make) => {
  /** MQTT.js's storeDeliver: read one item; on null wait for 'readable'; each item is "acknowledged" a turn later. */
  function deliver(stream: ReadableLike, log: string[]) {
    return new Promise<void>((resolve) => {
      stream.on('end', () => {
        log.push('end')
        resolve()
      })
      const next = () => {
        const item = stream.read(1) as { id: number } | null
        if (!item) {
          stream.once('readable', next)
          return
        }
        log.push(`item ${item.id}`)
        setImmediate(next)
      }
      next()
    })
  }

  it('gives every item once, in order, then end once', async () => {
    const items = [{ id: 1 }, { id: 2 }, { id: 3 }]
    let i = 0
    const stream = make(function () {
      this.push(i < items.length ? items[i++] : null)
    })
    const log: string[] = []
    await deliver(stream, log)
    await settle()
    expect(log).toEqual(['item 1', 'item 2', 'item 3', 'end'])
  })

  it('ends at once when there is nothing to give', async () => {
    const stream = make(function () {
      this.push(null)
    })
    const log: string[] = []
    await deliver(stream, log)
    await settle()
    expect(log).toEqual(['end'])
  })

  it("emits 'readable' when an item arrives after a read found none", async () => {
    // Nothing to give until the test pushes it, like a store that answers later.
    const stream = make(function () {})
    const log: string[] = []
    const done = deliver(stream, log)
    await settle()
    expect(log).toEqual([])
    stream.push({ id: 7 })
    await settle()
    stream.push(null)
    await done
    expect(log).toEqual(['item 7', 'end'])
  })

  it('destroy() emits close once', async () => {
    const stream = make(function () {})
    const log: string[] = []
    recordEvents(stream, log, ['close', 'error', 'end'])
    stream.destroy()
    stream.destroy()
    await settle()
    expect(log).toEqual(['close'])
  })
})
