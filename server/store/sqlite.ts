/**
 * The SQLite store: one local file through `@libsql/client`, the default when no `DATABASE_URL` is set.
 *
 * Why writes queue here: a libsql transaction owns a pooled connection, and SQLite allows one writer per file. A
 * second `transaction('write')` while the first waits on an `await` fails with SQLITE_BUSY at once, or, with a busy
 * timeout, blocks the whole event loop (libsql calls are synchronous) so the first can never finish. Write
 * transactions on one file therefore run one at a time in this process, through one queue per file shared by every
 * store open on it; the busy timeout only covers another process on the same file. Reads go straight to the pool: in
 * WAL mode they never wait for a writer.
 */
import { createClient, type Client, type InArgs } from '@libsql/client'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { migrate } from './schema'
import { createSqlStore, type Driver, type Row, type Tx } from './sql'
import type { Store } from './types'

/** Options of {@link openSqliteStore}. */
export interface SqliteStoreOptions {
  /** Path of the database file; created when absent (its folder must exist). */
  file: string
  /** How long a write waits for another process holding the file's write lock (default 5000 ms). */
  busyTimeoutMs?: number
  logger?: { info(event: string, fields?: Record<string, unknown>): void }
}

/** `undefined` is no SQLite value; an omitted optional field means NULL. */
const toArgs = (args: readonly unknown[] = []): InArgs => args.map((a) => (a === undefined ? null : a)) as InArgs

/** The write queue of one database file, and how many open stores use it. */
interface WriteQueue {
  tail: Promise<unknown>
  users: number
}
const queues = new Map<string, WriteQueue>()

/** A {@link Driver} over an open libsql client on `file`. */
export function sqliteDriver(client: Client, file: string): Driver {
  const key = path.resolve(file)
  const queue = queues.get(key) ?? { tail: Promise.resolve(), users: 0 }
  queues.set(key, queue)
  queue.users++
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.tail.then(fn, fn)
    queue.tail = run.catch(() => undefined)
    return run
  }
  let closed = false

  return {
    kind: 'sqlite',
    // The named locks are not needed: BEGIN IMMEDIATE takes the write lock of the whole file.
    write: (_locks, fn) =>
      exclusive(async () => {
        const tx = await client.transaction('write')
        try {
          const scoped: Tx = { query: async (sql, args) => (await tx.execute({ sql, args: toArgs(args) })).rows as unknown as Row[] }
          const result = await fn(scoped)
          await tx.commit()
          return result
        } finally {
          // Rolls back when fn threw or the commit failed; nothing to do after a commit.
          tx.close()
        }
      }),
    read: async (sql, args) => (await client.execute({ sql, args: toArgs(args) })).rows as unknown as Row[],
    async close() {
      if (closed) return
      closed = true
      // Let queued writes finish first: a write accepted before close() is a write the caller expects kept.
      await queue.tail
      client.close()
      if (--queue.users === 0 && queues.get(key) === queue) queues.delete(key)
    },
  }
}

/** Opens (creating when needed) the SQLite database at `file`, applies the migrations, and returns the store. */
export async function openSqliteStore(options: SqliteStoreOptions): Promise<Store> {
  const client = createClient({ url: pathToFileURL(options.file).href, timeout: options.busyTimeoutMs ?? 5000, intMode: 'number' })
  const driver = sqliteDriver(client, options.file)
  try {
    // Persistent in the file: readers no longer block on the writer, nor it on them.
    await client.execute('PRAGMA journal_mode = WAL')
    const applied = await migrate(driver)
    options.logger?.info('store.opened', { kind: 'sqlite', file: options.file, migrationsApplied: applied })
    return createSqlStore(driver)
  } catch (err) {
    await driver.close()
    throw err
  }
}
