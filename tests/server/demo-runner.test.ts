/**
 * `node scripts/demo.mjs`, the runner of `npm run demo`, with real processes on loopback: a killed server is started
 * again, SIGTERM stops both processes and frees the port, and a runner killed with SIGKILL does not leave its server
 * behind. No build is needed: with an empty H5_DIR the backend serves a small page at `/`.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import net from 'node:net'
import { freePort } from '../support/ports'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const root = resolve(__dirname, '../..')

/** A demo password of this run, to check that the runner and the server never print it. */
const DEMO_PASSWORD = `demo-${process.pid}-${Date.now().toString(36)}`
const ADMIN_PASSWORD = `admin-${process.pid}-${Date.now().toString(36)}`

interface Run {
  runner: ChildProcess
  /** Everything the runner and its server wrote to stdout and stderr so far. */
  out: () => string
  /** Server pids in the order the runner announced them. */
  serverPids: () => number[]
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

const temps: string[] = []
const runs: Run[] = []
let port = 0

function temp(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  temps.push(dir)
  return dir
}

/** True while `pid` is a running process (a zombie no parent reaped yet counts as gone). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    // No /proc (not Linux), or no such process.
  }
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function until<T>(check: () => T | Promise<T>, timeoutMs: number, what: string): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value) return value as NonNullable<T>
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** The HTTP status of GET `path`, or 0 when nothing answers. */
async function status(path: string): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(2000) })
    await res.arrayBuffer()
    return res.status
  } catch {
    return 0
  }
}

/** True when nothing listens on the port any more (it can be bound again). */
function portFree(): Promise<boolean> {
  return new Promise((resolveFree) => {
    const server = net.createServer()
    server.once('error', () => resolveFree(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolveFree(true)))
  })
}

/**
 * Ready once `/` answers (the first signal, whatever the backend's version), then `/healthz` with 200 JSON, the
 * backend's readiness check.
 */
async function ready(timeoutMs = 30_000): Promise<void> {
  await until(async () => (await status('/')) === 200, timeoutMs, `GET / on port ${port}`)
  const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(5000) })
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toMatch(/json/)
  await res.json()
}

function startRunner(env: Record<string, string> = {}): Run {
  const runner = spawn(process.execPath, ['scripts/demo.mjs'], {
    cwd: root,
    env: {
      ...process.env,
      // Not production: the backend then generates its secrets into DATA_DIR instead of requiring them.
      NODE_ENV: 'development',
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: temp('longlink-data-'),
      H5_DIR: temp('longlink-h5-'),
      DEMO_PASSWORD,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  runner.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk))
  runner.stderr!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) =>
    runner.once('exit', (code, signal) => resolveExit({ code, signal })),
  )
  const run: Run = {
    runner,
    out: () => out,
    serverPids: () => [...out.matchAll(/server started, pid=(\d+)/g)].map((m) => Number(m[1])),
    exited,
  }
  runs.push(run)
  return run
}

function kill(pid: number | undefined, signal: NodeJS.Signals): void {
  if (!pid) return
  try {
    process.kill(pid, signal)
  } catch {
    // Already gone.
  }
}

beforeAll(async () => {
  port = await freePort()
})

afterAll(async () => {
  for (const run of runs) {
    kill(run.runner.pid, 'SIGKILL')
    for (const pid of run.serverPids()) {
      // The server leads its own process group.
      kill(-pid, 'SIGKILL')
      kill(pid, 'SIGKILL')
    }
  }
  for (const dir of temps) rmSync(dir, { recursive: true, force: true })
})

describe('scripts/demo.mjs', () => {
  it('restarts a killed server, and stops both processes on SIGTERM', async () => {
    const run = startRunner()
    await ready()
    const [first] = run.serverPids()
    expect(first).toBeGreaterThan(0)
    expect(run.out()).toContain(`/admin`)

    // (a) The server dies without a word: the runner says why and starts it again on the same port.
    process.kill(first, 'SIGKILL')
    const second = await until(() => run.serverPids()[1], 15_000, 'the restarted server')
    expect(second).not.toBe(first)
    expect(run.out()).toMatch(new RegExp(`pid=${first} exited \\(signal SIGKILL\\); restarting in 1 s`))
    await ready()

    // (b) SIGTERM to the runner: forwarded, the server closes, both exit, the port is free.
    run.runner.kill('SIGTERM')
    const exit = await Promise.race([
      run.exited,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('runner still running')), 10_000)),
    ])
    expect(exit).toEqual({ code: 0, signal: null })
    expect(alive(second)).toBe(false)
    expect(await portFree()).toBe(true)

    // Neither process printed the demo password (only where it comes from).
    expect(run.out()).not.toContain(DEMO_PASSWORD)
    expect(run.out()).toContain('DEMO_PASSWORD')
  }, 90_000)

  it('does not leave the server behind when the runner is killed with SIGKILL', async () => {
    const run = startRunner({ ADMIN_PASSWORD })
    await ready()
    const [server] = run.serverPids()
    expect(alive(server)).toBe(true)

    // (c) The runner cannot forward anything: the server notices its IPC channel close and stops by itself.
    run.runner.kill('SIGKILL')
    await run.exited
    await until(() => !alive(server), 10_000, `server pid=${server} to exit`)
    await until(() => portFree(), 5_000, `port ${port} to be free`)
    expect(run.out()).toContain('ADMIN_PASSWORD')
    expect(run.out()).not.toContain(ADMIN_PASSWORD)
    expect(run.out()).not.toContain(DEMO_PASSWORD)
  }, 60_000)
})
