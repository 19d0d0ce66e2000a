/**
 * Request/answer over a child process's IPC channel, for the scale benchmark's processes (the backend harness, the
 * rider fleets). Every request has a deadline, so a child that hangs fails the bench instead of stalling it.
 */
import type { ChildProcess } from 'node:child_process'

interface Envelope {
  id: number
  ok?: boolean
  result?: unknown
  error?: string
}

/** The parent's side: `call(cmd, args)` resolves with the child's answer. */
export function caller(child: ChildProcess): <T>(cmd: string, args?: Record<string, unknown>, timeoutMs?: number) => Promise<T> {
  let next = 0
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>()
  child.on('message', (message: Envelope) => {
    const w = waiting.get(message.id)
    if (!w) return
    waiting.delete(message.id)
    clearTimeout(w.timer)
    if (message.ok) w.resolve(message.result)
    else w.reject(new Error(message.error ?? 'failed'))
  })
  child.once('exit', (code, signal) => {
    for (const w of waiting.values()) {
      clearTimeout(w.timer)
      w.reject(new Error(`child exited (${signal ?? code})`))
    }
    waiting.clear()
  })
  return (cmd, args = {}, timeoutMs = 120_000) =>
    new Promise((resolve, reject) => {
      const id = ++next
      const timer = setTimeout(() => {
        waiting.delete(id)
        reject(new Error(`${cmd}: no answer within ${timeoutMs} ms`))
      }, timeoutMs)
      waiting.set(id, { resolve: resolve as (v: unknown) => void, reject, timer })
      child.send({ id, cmd, args })
    })
}

/** The child's side: answers each request with what its handler returns (or throws). */
export function serve(handlers: Record<string, (args: Record<string, unknown>) => unknown>): void {
  process.on('message', (message: { id: number; cmd: string; args: Record<string, unknown> }) => {
    const handler = handlers[message.cmd]
    Promise.resolve()
      .then(() => (handler ? handler(message.args) : Promise.reject(new Error(`unknown command ${message.cmd}`))))
      .then(
        (result) => process.send!({ id: message.id, ok: true, result }),
        (error: unknown) => process.send!({ id: message.id, ok: false, error: error instanceof Error ? error.message : String(error) }),
      )
  })
  // The parent is gone (it crashed or was killed): nothing of this bench may outlive it.
  process.on('disconnect', () => process.exit(0))
}

/** A wall-clock time in ms with sub-millisecond precision, comparable between processes on one machine. */
export const wallNow = (): number => performance.timeOrigin + performance.now()

/**
 * Source addresses in 127.0.0.0/8 for the `i`-th connection: `perAddress` connections per address, so the
 * backend's per-address limit and the ephemeral port range are never what a bench measures.
 */
export function sourceAddress(i: number, perAddress: number): string {
  const n = Math.floor(i / perAddress)
  return `127.0.${1 + Math.floor(n / 250)}.${1 + (n % 250)}`
}
