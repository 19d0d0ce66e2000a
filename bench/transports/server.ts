/**
 * The server side of the transports benchmark, in its own process (so the client's event loop is not the server's):
 * a `node:http` server on 127.0.0.1 with `attachLongLink` at {@link PATH}, driven over IPC by bench/transports.ts.
 *
 * Each client says `hello <label>` once it is open (its label is also on its URL, `?bench=<label>`, so every HTTP
 * request it makes is counted under it). Commands:
 * - `burst`: `count` messages of `size` characters to one label, as fast as `conn.send` admits them, at most `window`
 *   sends unsettled; answers once every send settled.
 * - `pace`: messages to some labels at `rate` per second each for `seconds`, each stamped with its send time.
 * - `requests` / `reset`: the HTTP requests at the path per label (session opens, down GETs, POSTs), since the reset.
 * - `received`: messages the server got from each label since the reset (`hello` aside).
 * - `now`: this process's wall clock, to measure the offset between the two.
 * It sends `{ listening: <port>, path }` once it serves, and exits when the parent goes away or on SIGTERM.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { attachLongLink, type LongLinkConnection } from '../../server/longlink/index'
import { serve, wallNow } from '../scale/ipc'

const PATH = '/ll'

interface Requests {
  /** GET …&open=1: a session opened. */
  opens: number
  /** GET …&sid=…: a poll, or an SSE stream opened. */
  gets: number
  posts: number
}

const conns = new Map<string, LongLinkConnection>()
const requests = new Map<string, Requests>()
const received = new Map<string, number>()

/** A message of `size` characters: its send time (wall ms), its number, padding. */
function message(stamp: number, n: number, size: number): string {
  const head = `${stamp.toFixed(3)} ${n} `
  return head.length >= size ? head : head + 'x'.repeat(size - head.length)
}

/** The connection that said hello as `label`; waits for it up to `timeoutMs`. */
async function connOf(label: string, timeoutMs = 10_000): Promise<LongLinkConnection> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const conn = conns.get(label)
    if (conn) return conn
    if (Date.now() > deadline) throw new Error(`no connection said hello as ${label} within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

async function main(): Promise<void> {
  const server = http.createServer((_req, res) => {
    res.statusCode = 404
    res.end()
  })
  const handle = attachLongLink(server, {
    path: PATH,
    // Every client of the bench comes from 127.0.0.1.
    maxSessionsPerClient: 1000,
    onConnection(conn) {
      let label: string | undefined
      conn.on('message', (data) => {
        if (typeof data !== 'string') return
        if (label === undefined && data.startsWith('hello ')) {
          label = data.slice(6)
          conns.set(label, conn)
          return
        }
        if (label !== undefined) received.set(label, (received.get(label) ?? 0) + 1)
      })
      conn.on('close', () => label !== undefined && conns.get(label) === conn && conns.delete(label))
    },
  })
  // Put in front of the listener attachLongLink installed (it calls the ones it found only for other paths), so every
  // request at the path is counted before LongLink sees it. Upgrades are not requests: a WebSocket makes none.
  server.prependListener('request', (req: http.IncomingMessage) => {
    const url = new URL(String(req.url), 'http://x')
    if (url.pathname !== PATH) return
    const label = url.searchParams.get('bench') ?? '?'
    let r = requests.get(label)
    if (!r) requests.set(label, (r = { opens: 0, gets: 0, posts: 0 }))
    if (req.method === 'POST') r.posts++
    else if (req.method === 'GET') url.searchParams.has('open') ? r.opens++ : r.gets++
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))

  let closing: Promise<void> | undefined
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      await Promise.race([handle.close(), new Promise((r) => setTimeout(r, 3000))])
      server.closeAllConnections()
      await new Promise((r) => server.close(r))
    })())
  process.on('SIGTERM', () => void close().finally(() => process.exit(0)))

  serve({
    now: () => wallNow(),
    reset() {
      requests.clear()
      received.clear()
    },
    requests: () => Object.fromEntries(requests),
    received: () => Object.fromEntries(received),
    async burst(args) {
      const conn = await connOf(String(args.label))
      const count = Number(args.count)
      const window = Number(args.window)
      const size = Number(args.size)
      let sent = 0
      let settled = 0
      let failed: unknown
      const started = wallNow()
      await new Promise<void>((done) => {
        const tick = (): void => {
          // Sends go out until `window` are unsettled; each settlement lets the next ones go on a later turn.
          while (sent < count && sent - settled < window && failed === undefined) {
            sent++
            conn.send(message(wallNow(), sent, size)).then(settle, (error: unknown) => {
              failed ??= error
              settle()
            })
          }
          if (failed !== undefined || settled === count) done()
        }
        let queued = false
        const settle = (): void => {
          settled++
          if (failed !== undefined || settled === count) return done()
          if (!queued && sent - settled < window / 2) {
            queued = true
            setImmediate(() => ((queued = false), tick()))
          }
        }
        tick()
      })
      if (failed !== undefined) throw failed instanceof Error ? failed : new Error(String(failed))
      return { sent, ms: wallNow() - started }
    },
    async pace(args) {
      const labels = args.labels as string[]
      const targets = await Promise.all(labels.map((label) => connOf(label)))
      const rate = Number(args.rate)
      const count = Math.round(rate * Number(args.seconds))
      const size = Number(args.size)
      const started = wallNow()
      let sent = 0
      let failures = 0
      await new Promise<void>((done) => {
        const tick = (): void => {
          const due = Math.min(count, Math.floor(((wallNow() - started) / 1000) * rate) + 1)
          while (sent < due) {
            sent++
            for (const conn of targets) conn.send(message(wallNow(), sent, size)).catch(() => failures++)
          }
          if (sent >= count) return done()
          // The next message is due at started + sent / rate; timers fire a little late, never early.
          setTimeout(tick, Math.max(0, started + (sent / rate) * 1000 - wallNow()))
        }
        tick()
      })
      return { sent, failures, ms: wallNow() - started }
    },
    close: () => close(),
  })
  process.send!({ listening: (server.address() as AddressInfo).port, path: PATH })
}

main().catch((error: unknown) => {
  process.stderr.write(`transports bench server failed: ${error instanceof Error ? error.stack : String(error)}\n`)
  process.exit(1)
})
