/**
 * The database schema as a numbered list of migrations, shared by SQLite and PostgreSQL, and the runner that applies
 * them. Each migration runs in its own transaction together with its row in `schema_migrations`, under the
 * `migrations` lock, so a start is idempotent and two processes starting at once apply each step exactly once (the
 * second waits, then finds it recorded). Append new steps; never edit one that has shipped.
 *
 * Column types: `BIGINT` holds every time (ms since epoch) and duration; SQLite gives it integer affinity, so the same
 * DDL serves both databases, except for the auto-increment key, which each spells its own way.
 */
import type { Driver } from './sql'

/** One schema step. */
export interface Migration {
  /** Position in the list, from 1, without gaps. */
  version: number
  /** What it does, for the logs. */
  name: string
  /** The statements, in order, for `kind`. */
  up(kind: Driver['kind']): string[]
}

/** Every migration, oldest first. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'riders, holds, rides, refresh tokens',
    up: (kind) => [
      `CREATE TABLE riders (
        id TEXT PRIMARY KEY,
        password_hash TEXT,
        wechat_openid TEXT UNIQUE,
        created_at BIGINT NOT NULL
      )`,
      // One row per held bike. UNIQUE (rider): the claim rules leave a rider at most one hold in all (a new
      // reservation replaces the old one, and a rider unlocking or riding cannot claim a second bike), and the
      // constraint keeps a bug from breaking that. `ride_key` identifies the ride from its unlock on.
      `CREATE TABLE holds (
        bike TEXT PRIMARY KEY,
        rider TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL CHECK (status IN ('reserved', 'unlocking', 'riding')),
        reserved_until BIGINT,
        unlock_at BIGINT,
        started_at BIGINT,
        ride_key TEXT,
        CHECK (status <> 'reserved' OR reserved_until IS NOT NULL),
        CHECK (status <> 'unlocking' OR (unlock_at IS NOT NULL AND ride_key IS NOT NULL)),
        CHECK (status <> 'riding' OR (started_at IS NOT NULL AND ride_key IS NOT NULL))
      )`,
      `CREATE INDEX holds_reserved_until ON holds (reserved_until) WHERE status = 'reserved'`,
      // ride_key UNIQUE: a ride's fare can be recorded once, whatever the code above does.
      `CREATE TABLE rides (
        id ${kind === 'postgres' ? 'BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY' : 'INTEGER PRIMARY KEY AUTOINCREMENT'},
        ride_key TEXT NOT NULL UNIQUE,
        bike TEXT NOT NULL,
        rider TEXT NOT NULL,
        started_at BIGINT NOT NULL,
        ended_at BIGINT NOT NULL,
        duration_ms BIGINT NOT NULL CHECK (duration_ms >= 0),
        fare_cents BIGINT NOT NULL CHECK (fare_cents >= 0)
      )`,
      `CREATE INDEX rides_rider_ended ON rides (rider, ended_at, id)`,
      `CREATE TABLE refresh_tokens (
        hash TEXT PRIMARY KEY,
        rider TEXT NOT NULL,
        expires_at BIGINT NOT NULL
      )`,
      `CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at)`,
    ],
  },
  {
    version: 2,
    name: 'ride events',
    up: (kind) => [
      // Append-only: a rider's event stream resumes after the last id it saw, so ids are never reused (AUTOINCREMENT
      // in SQLite, an identity in PostgreSQL), also after the newest rows are deleted. `data` is JSON text.
      `CREATE TABLE ride_events (
        id ${kind === 'postgres' ? 'BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY' : 'INTEGER PRIMARY KEY AUTOINCREMENT'},
        rider TEXT NOT NULL,
        bike TEXT NOT NULL,
        type TEXT NOT NULL,
        data TEXT NOT NULL,
        at BIGINT NOT NULL
      )`,
      `CREATE INDEX ride_events_rider_id ON ride_events (rider, id)`,
    ],
  },
  {
    version: 3,
    name: 'unlock announcements owed',
    up: () => [
      // 1 from the moment a ride starts until its unlock has been published: a process that dies in between leaves
      // it at 1, and another process sharing the database announces it. Rows from before are taken as announced.
      `ALTER TABLE holds ADD COLUMN announce_pending INTEGER NOT NULL DEFAULT 0`,
      `CREATE INDEX holds_overdue ON holds (status, unlock_at, started_at)`,
    ],
  },
]

/** The newest schema version this code knows. */
export const SCHEMA_VERSION = MIGRATIONS.length

function checkList(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`store: migration #${i + 1} has version ${m.version}; versions must run 1, 2, 3… in order`)
  })
}

/**
 * Applies the migrations `driver`'s database lacks, in order; returns the versions applied now (empty when it was up
 * to date). `clock` stamps `applied_at`.
 */
export async function migrate(driver: Driver, migrations: readonly Migration[] = MIGRATIONS, clock: () => number = Date.now): Promise<number[]> {
  checkList(migrations)
  const applied: number[] = []
  for (const migration of migrations) {
    const done = await driver.write(['migrations'], async (tx) => {
      // Created under the lock, inside the transaction: two PostgreSQL connections running CREATE TABLE IF NOT EXISTS at
      // the same moment can still collide on the catalog.
      await tx.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)')
      const found = await tx.query('SELECT version FROM schema_migrations WHERE version = ?', [migration.version])
      if (found.length) return false
      for (const statement of migration.up(driver.kind)) await tx.query(statement)
      await tx.query('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)', [migration.version, clock()])
      return true
    })
    if (done) applied.push(migration.version)
  }
  return applied
}
