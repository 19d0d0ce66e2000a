/**
 * Picks and opens the backend's store: PostgreSQL when `databaseUrl` is a `postgres://` or `postgresql://` URL,
 * otherwise the SQLite file `<dataDir>/longlink.db`. The returned store is migrated to the current schema.
 */
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import type { Store } from './types'

/** Options of {@link openStore}. */
export interface OpenStoreOptions {
  /** `DATABASE_URL`: a `postgres://` or `postgresql://` URL selects PostgreSQL; anything else selects SQLite. */
  databaseUrl?: string
  /** Folder of the SQLite file (created, private to this user, when absent). */
  dataDir: string
  /** Receives `store.opened` (kind, and file or host/port/database: never credentials). */
  logger?: { info(event: string, fields?: Record<string, unknown>): void }
}

/** Name of the SQLite file inside `dataDir`. */
export const SQLITE_FILE = 'longlink.db'

/** True when `url` selects the PostgreSQL store. */
export const isPostgresUrl = (url: string | undefined): url is string => !!url && /^postgres(ql)?:\/\//i.test(url)

/** Opens the store chosen by `opts.databaseUrl` and runs its migrations before resolving. */
export async function openStore(opts: OpenStoreOptions): Promise<Store> {
  // Each driver is loaded only when chosen: a backend on one of them never loads (or holds in memory) the other.
  if (isPostgresUrl(opts.databaseUrl)) return (await import('./postgres')).openPostgresStore({ url: opts.databaseUrl, logger: opts.logger })
  if (opts.databaseUrl) {
    // Not PostgreSQL: SQLite, as documented, but said aloud, since a mistyped URL would otherwise go unnoticed. Only
    // the scheme is logged: the rest may carry credentials.
    opts.logger?.info('store.database-url-ignored', { scheme: /^[a-z][a-z0-9+.-]*:/i.exec(opts.databaseUrl)?.[0] ?? '(none)', using: 'sqlite' })
  }
  // 0o700: the file holds password hashes and refresh-token hashes. (mkdir leaves an existing folder's mode alone.)
  await mkdir(opts.dataDir, { recursive: true, mode: 0o700 })
  return (await import('./sqlite')).openSqliteStore({ file: path.join(opts.dataDir, SQLITE_FILE), logger: opts.logger })
}
