/** The cluster settings: what `REDIS_URL` needs and excludes, and when the takeover sweep runs by default. */
import { describe, expect, it } from 'vitest'
import { loadConfig } from '../../server/config'

// Secrets from the environment: nothing is written to a data dir.
const base = { TOKEN_SECRET: 'x'.repeat(32), ADMIN_PASSWORD: 'admin-secret-pw', DATA_DIR: '/nonexistent/longlink' }
const pg = 'postgres://app@127.0.0.1:5432/longlink'
const redis = 'redis://127.0.0.1:6379'

describe('cluster settings', () => {
  it('refuses REDIS_URL with BROKER_URL, and REDIS_URL without DATABASE_URL', () => {
    expect(() => loadConfig({ ...base, REDIS_URL: redis, DATABASE_URL: pg, BROKER_URL: 'mqtt://127.0.0.1:1883' })).toThrow(
      /REDIS_URL and BROKER_URL exclude each other/,
    )
    expect(() => loadConfig({ ...base, REDIS_URL: redis })).toThrow(/REDIS_URL needs DATABASE_URL/)
    // A DATABASE_URL that is not PostgreSQL means SQLite: one file per process, no shared store.
    expect(() => loadConfig({ ...base, REDIS_URL: redis, DATABASE_URL: 'file:/tmp/x.db' })).toThrow(/REDIS_URL needs DATABASE_URL/)
    expect(loadConfig({ ...base, REDIS_URL: redis, DATABASE_URL: pg })).toMatchObject({ redisUrl: redis, databaseUrl: pg })
  })

  it('sweeps for overdue unlocks only when the store may be shared, unless told otherwise', () => {
    expect(loadConfig(base).takeoverSweepMs).toBe(0)
    expect(loadConfig({ ...base, DATABASE_URL: pg }).takeoverSweepMs).toBe(1000)
    expect(loadConfig(base, { databaseUrl: pg }).takeoverSweepMs).toBe(1000)
    expect(loadConfig({ ...base, DATABASE_URL: 'file:/tmp/x.db' }).takeoverSweepMs).toBe(0)
    expect(loadConfig({ ...base, DATABASE_URL: pg, TAKEOVER_SWEEP_MS: '0' }).takeoverSweepMs).toBe(0)
    expect(loadConfig({ ...base, TAKEOVER_SWEEP_MS: '250', TAKEOVER_GRACE_MS: '500' })).toMatchObject({ takeoverSweepMs: 250, takeoverGraceMs: 500 })
  })

  it('names the process after its host and pid unless NODE_ID is set', () => {
    expect(loadConfig(base).nodeId).toMatch(new RegExp(`:${process.pid}$`))
    expect(loadConfig({ ...base, NODE_ID: 'api-1' }).nodeId).toBe('api-1')
  })
})
