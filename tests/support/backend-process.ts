/** Runs tests/support/backend-main.ts as a child process (a real process to SIGKILL), and finds free ports. */
import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

export interface BackendProcess {
  readonly url: string
  readonly port: number
  readonly child: ChildProcess
  /** Every stdout line (JSON log lines) so far. */
  readonly lines: string[]
  /** Parsed log entries with this event name. */
  events(event: string): Record<string, unknown>[]
  /** Resolves with the exit code (or signal) when the process is gone. */
  readonly exited: Promise<number | string | null>
  kill(signal?: NodeJS.Signals): Promise<void>
}

export { freePort } from './ports'

/** Starts the backend with `env` (PORT and DATA_DIR at least) and resolves once it listens (bounded by `timeoutMs`). */
export async function startBackendProcess(env: Record<string, string>, timeoutMs = 20_000): Promise<BackendProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'tests/support/backend-main.ts')], {
    cwd: ROOT,
    env: { ...process.env, HOST: '127.0.0.1', NODE_ENV: 'test', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const lines: string[] = []
  let rest = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (rest + chunk).split('\n')
    rest = parts.pop()!
    lines.push(...parts.filter(Boolean))
  })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-4000)))
  const exited = new Promise<number | string | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)))

  const deadline = Date.now() + timeoutMs
  let port: number | undefined
  while (port === undefined) {
    const listening = lines.find((l) => l.includes('"backend.listening"'))
    if (listening) port = (JSON.parse(listening) as { port: number }).port
    else if (child.exitCode !== null || child.signalCode !== null) throw new Error(`backend exited before listening: ${stderr}`)
    else if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`backend did not listen within ${timeoutMs} ms: ${stderr}`)
    } else await new Promise((r) => setTimeout(r, 20))
  }
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    child,
    lines,
    events: (event) => lines.filter((l) => l.includes(`"${event}"`)).map((l) => JSON.parse(l) as Record<string, unknown>),
    exited,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))])
    },
  }
}
