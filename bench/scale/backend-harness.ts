/**
 * The demo backend in its own process for the scale benchmark, configured by the environment like any deployment
 * (PORT, DATA_DIR, TOKEN_SECRET, …), plus what only a benchmark needs, over IPC:
 * - `rss`: the process's resident memory after a full garbage collection (run with `--expose-gc`);
 * - `publish`: targeted QoS 0 messages to `riders/<rider>/bench`, each carrying its send time, at a paced rate or as
 *   fast as the broker takes them, through the backend's own broker (the way the backend publishes an unlock).
 * It sends `{ listening: <wall ms> }` once it serves.
 */
import { startBackend } from '../../server/app'
import { serve, wallNow } from './ipc'

async function main(): Promise<void> {
  // The backend's own logger, every line to stdout as deployed (the bench points stdout at a file).
  const backend = await startBackend()
  const aedes = backend.broker!.aedes
  process.send!({ listening: wallNow() })
  process.on('SIGTERM', () => void backend.close().finally(() => process.exit(0)))

  /** Publishes one message; resolves once aedes has handed it to its subscribers' streams. */
  const publishOne = (rider: string, stamp: number): Promise<void> =>
    new Promise((resolve) =>
      aedes.publish({ cmd: 'publish', topic: `riders/${rider}/bench`, payload: Buffer.from(String(stamp)), qos: 0, retain: false, dup: false }, () =>
        resolve(),
      ),
    )

  serve({
    rss() {
      ;(globalThis as { gc?: () => void }).gc?.()
      return process.memoryUsage().rss
    },
    /** The whole of `process.memoryUsage()` after a collection, to see where a rider's memory goes. */
    memory() {
      ;(globalThis as { gc?: () => void }).gc?.()
      return process.memoryUsage()
    },
    online: () => backend.broker!.online(),
    /** CPU time this process has used so far (µs), to tell what one delivery costs the backend. */
    cpu: () => {
      const { user, system } = process.cpuUsage()
      return user + system
    },
    /** Writes a heap snapshot (to look at what a rider costs); answers with its path. */
    snapshot: async () => (await import('node:v8')).writeHeapSnapshot(),
    /**
     * `count` messages to riders chosen at random among `riders`, at `rate` per second (0: as fast as possible, with
     * at most `window` publishes in flight). Answers with what was sent and how long it took.
     */
    async publish(args) {
      const riders = args.riders as string[]
      const count = Number(args.count)
      const rate = Number(args.rate)
      const window = Number(args.window ?? 2000)
      const started = wallNow()
      let sent = 0
      let inFlight = 0
      await new Promise<void>((done) => {
        const tick = (): void => {
          const due = rate > 0 ? Math.min(count, Math.floor(((wallNow() - started) / 1000) * rate)) : count
          while (sent < due && inFlight < window) {
            inFlight++
            sent++
            // Paced: stamped with the time the message was due, not when it went out, so a publisher that falls
            // behind shows as latency instead of hiding it.
            const stamp = rate > 0 ? started + ((sent - 1) / rate) * 1000 : wallNow()
            void publishOne(riders[(Math.random() * riders.length) | 0], stamp).then(() => inFlight--)
          }
          if (sent >= count) {
            const finish = (): void => (inFlight === 0 ? done() : void setTimeout(finish, 1))
            return finish()
          }
          // setImmediate lets the sockets write between batches; a paced run also waits for its next share.
          if (rate > 0 && sent >= due) setTimeout(tick, 1)
          else setImmediate(tick)
        }
        tick()
      })
      return { sent, ms: wallNow() - started }
    },
  })
}

main().catch((error: unknown) => {
  process.stderr.write(`scale harness failed: ${error instanceof Error ? error.stack : String(error)}\n`)
  process.exit(1)
})
