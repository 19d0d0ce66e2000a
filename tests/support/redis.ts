/**
 * A throwaway Redis server for tests: Debian's `redis-server` (installed by `.ci/install-system.sh`) as a child
 * process on a free loopback port, with its own temp dir and no persistence (`--save ''`, no append-only file).
 * Every step has a deadline; stop() kills it and deletes the dir, and a server still up when the process exits is
 * killed then.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './ports'

/** A running test server. */
export interface RedisServer {
  /** `redis://127.0.0.1:PORT`. */
  url: string
  port: number
  /** Stops the server and deletes its files (idempotent). */
  stop(): Promise<void>
}

const CANDIDATES = ['/usr/bin/redis-server', '/usr/local/bin/redis-server', '/usr/sbin/redis-server']

/** Path of the redis-server binary, or undefined when it is not installed. */
export function redisServerPath(): string | undefined {
  return CANDIDATES.find((p) => existsSync(p))
}

/** Resolves once the server answers PING with PONG on `port`; rejects on anything else or after `timeoutMs`. */
function ping(port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    let answer = ''
    const fail = (err: Error): void => {
      socket.destroy()
      reject(err)
    }
    socket.setTimeout(timeoutMs, () => fail(new Error(`no PONG within ${timeoutMs} ms`)))
    socket.once('error', fail)
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      answer += chunk
      if (!answer.includes('\r\n')) return
      socket.destroy()
      if (answer.startsWith('+PONG')) resolve()
      // `-LOADING` and the like: not ready yet.
      else reject(new Error(`redis answered ${JSON.stringify(answer.trim())}`))
    })
  })
}

/** Starts a server (about 50 ms); rejects after `timeoutMs` when it does not answer. */
export async function startRedis(timeoutMs = 10_000): Promise<RedisServer> {
  const bin = redisServerPath()
  if (!bin) throw new Error('redis-server not found: install it with: bash .ci/install-system.sh (Debian: package redis-server)')
  const dir = mkdtempSync(join(tmpdir(), 'longlink-redis-'))
  let child: ChildProcess | undefined
  let output = ''
  const killNow = (): void => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
  process.once('exit', killNow)

  try {
    const deadline = Date.now() + timeoutMs
    for (let attempt = 1; ; attempt++) {
      const port = await freePort()
      output = ''
      const proc = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      child = proc
      const keep = (chunk: Buffer): void => void (output = (output + chunk.toString('utf8')).slice(-4000))
      proc.stdout!.on('data', keep)
      proc.stderr!.on('data', keep)
      const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
      let ready = false
      while (!ready && proc.exitCode === null && Date.now() < deadline) {
        ready = await ping(port, 1000).then(
          () => true,
          () => false,
        )
        if (!ready) await new Promise((r) => setTimeout(r, 20))
      }
      if (ready) {
        let stopping: Promise<void> | undefined
        return {
          url: `redis://127.0.0.1:${port}`,
          port,
          stop: () =>
            (stopping ??= (async () => {
              process.removeListener('exit', killNow)
              proc.kill('SIGKILL')
              await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))])
              rmSync(dir, { recursive: true, force: true })
            })()),
        }
      }
      proc.kill('SIGKILL')
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))])
      // Most likely someone took the port between freePort() and the bind: try another one, within the deadline.
      if (attempt >= 3 || Date.now() >= deadline) throw new Error(`redis-server did not answer on 127.0.0.1:${port}:\n${output}`)
    }
  } catch (err) {
    process.removeListener('exit', killNow)
    killNow()
    throw err
  }
}
