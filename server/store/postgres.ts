/**
 * The PostgreSQL store (`DATABASE_URL=postgres://…`), through a small `pg` pool. Several backend processes may share
 * one database: each write transaction first takes transaction-scoped advisory locks on the rider and bike it is
 * about (`pg_advisory_xact_lock`), so claims on one bike, or by one rider, run one after the other across processes,
 * and the locks go away with the transaction, whatever happens to the connection.
 */
import { createHash } from 'node:crypto'
import pg from 'pg'
import { migrate } from './schema'
import { createSqlStore, type Driver, type Row } from './sql'
import type { Store } from './types'

/** Options of {@link openPostgresStore}. */
export interface PostgresStoreOptions {
  /** `postgres://user:password@host:port/database` (the password is never logged). */
  url: string
  /** Pool size (default 10). */
  max?: number
  /** How long to wait for a connection before failing (default 5000 ms). */
  connectionTimeoutMs?: number
  logger?: { info(event: string, fields?: Record<string, unknown>): void }
}

/** Where a connection string points, without its credentials: safe to log. */
export function describePostgresUrl(url: string): { host: string; port: number; database: string } {
  const u = new URL(url)
  return {
    host: u.hostname || u.searchParams.get('host') || 'localhost',
    port: Number(u.port || 5432),
    database: decodeURIComponent(u.pathname.replace(/^\//, '')) || decodeURIComponent(u.username) || 'postgres',
  }
}

const INT8_OID = 20
/**
 * pg returns BIGINT (and COUNT(*)) as strings, since not every int8 fits a JS number. Every int8 here is a time in ms,
 * a duration, cents or an id, all far below 2^53, so they come back as numbers; a value that would not fit stays a
 * string and `int()` refuses it instead of rounding it. Set on this pool only, not on pg's global type table.
 */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID && format !== 'binary') {
      return (text: string) => {
        const n = Number(text)
        return Number.isSafeInteger(n) ? n : text
      }
    }
    return pg.types.getTypeParser(oid, format)
  },
} as pg.CustomTypesConfig

/** The advisory lock space of this app (`LL`), the first key of `pg_advisory_xact_lock(int, int)`. */
const LOCK_SPACE = 0x4c4c
/** A lock name → a 32-bit key, computed here so every process sorts keys the same way (no lock-order deadlocks). */
const lockKey = (name: string): number => createHash('sha256').update(name).digest().readInt32BE(0)

/** `?` placeholders → `$1, $2, …` (the shared SQL never has a `?` inside a literal). */
function numbered(sql: string): string {
  let i = 0
  return sql.replace(/\?/g, () => `$${++i}`)
}

/** deadlock_detected, serialization_failure: the transaction did nothing and may simply run again. */
const RETRYABLE = new Set(['40P01', '40001'])
const ATTEMPTS = 5

/** A {@link Driver} over a pg pool. */
export function postgresDriver(pool: pg.Pool): Driver {
  let closed = false
  return {
    kind: 'postgres',
    async write(locks, fn) {
      const keys = [...new Set(locks.map(lockKey))].sort((a, b) => a - b)
      for (let attempt = 1; ; attempt++) {
        const client = await pool.connect()
        let broken = false
        try {
          await client.query('BEGIN')
          for (const key of keys) await client.query('SELECT pg_advisory_xact_lock($1::int4, $2::int4)', [LOCK_SPACE, key])
          const result = await fn({ query: async (sql, args) => (await client.query(numbered(sql), args as unknown[])).rows as Row[] })
          await client.query('COMMIT')
          return result
        } catch (err) {
          try {
            await client.query('ROLLBACK')
          } catch {
            // A connection that cannot even roll back is not going back into the pool.
            broken = true
          }
          if (attempt >= ATTEMPTS || !RETRYABLE.has((err as { code?: string }).code ?? '')) throw err
        } finally {
          client.release(broken)
        }
      }
    },
    read: async (sql, args) => (await pool.query(numbered(sql), args as unknown[])).rows as Row[],
    async close() {
      if (closed) return
      closed = true
      await pool.end()
    },
  }
}

/** Connects to `url`, applies the migrations, and returns the store. */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<Store> {
  const where = describePostgresUrl(options.url)
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.max ?? 10,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 5000,
    idleTimeoutMillis: 30_000,
    application_name: 'longlink',
    types,
  })
  // An idle connection dropped by the server emits 'error' on the pool; unheard, that would end the process.
  pool.on('error', (err) => options.logger?.info('store.connection-error', { kind: 'postgres', ...where, error: err.message }))
  const driver = postgresDriver(pool)
  try {
    const applied = await migrate(driver)
    options.logger?.info('store.opened', { kind: 'postgres', ...where, migrationsApplied: applied })
    return createSqlStore(driver)
  } catch (err) {
    await driver.close()
    throw err
  }
}
