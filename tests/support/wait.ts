import type { Connection, ConnectionEvents } from '../../uni_modules/longlink-socket/js_sdk/index'

/** Resolves with the next `event` of `connection` (that passes `filter`), or rejects after `timeoutMs`. */
export function nextEvent<K extends keyof ConnectionEvents>(
  connection: Connection,
  event: K,
  timeoutMs = 5000,
  filter: (payload: ConnectionEvents[K]) => boolean = () => true,
): Promise<ConnectionEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off()
      reject(new Error(`no "${String(event)}" event within ${timeoutMs} ms (state ${connection.state})`))
    }, timeoutMs)
    const off = connection.on(event, (payload) => {
      if (!filter(payload)) return
      clearTimeout(timer)
      off()
      resolve(payload)
    })
  })
}

/** Polls `check` until it is truthy, or rejects after `timeoutMs`. */
export async function until(check: () => unknown, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(10)
  }
}

/** Waits `ms` milliseconds of real time. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Records every event of a connection, in order, for assertions on sequences. */
export function record(connection: Connection): {
  events: { name: keyof ConnectionEvents; payload: unknown }[]
  of<K extends keyof ConnectionEvents>(name: K): ConnectionEvents[K][]
} {
  const events: { name: keyof ConnectionEvents; payload: unknown }[] = []
  for (const name of ['open', 'message', 'close', 'error', 'reconnecting', 'state'] as const) {
    connection.on(name, (payload) => events.push({ name, payload }))
  }
  return {
    events,
    of: (name) => events.filter((e) => e.name === name).map((e) => e.payload) as never,
  }
}

/** Runs `fn` over `items` with at most `limit` at a time (many clients, without opening them all at once). */
export async function pool<T>(items: T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const i = next++
        await fn(items[i], i)
      }
    }),
  )
}

/** Resolves as `p` does, or rejects after `ms` with a message naming what did not happen. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms))),
    ])
  } finally {
    clearTimeout(timer)
  }
}
