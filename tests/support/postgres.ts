/**
 * A throwaway PostgreSQL server for tests: Debian's server binaries (`/usr/lib/postgresql/<version>/bin`, installed by
 * `.ci/install-system.sh`) run a fresh cluster in a temp dir, on a free loopback port, with trust authentication
 * for the user `app` and a database made for the caller.
 *
 * PostgreSQL refuses to run as root, and CI runs as root: the temp dir then belongs to the `postgres` system user and
 * every server binary runs through `runuser -u postgres --`. Otherwise the binaries run as the current user.
 *
 * The cluster is for tests only: no fsync. Every step has a deadline; stop() falls back to an immediate shutdown and
 * then a kill, and a server still up when the process exits is stopped then.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './ports'
import pg from 'pg'

/** A running test server. */
export interface PostgresServer {
  /** `postgres://app@127.0.0.1:PORT/DBNAME` of the database made at start. */
  url: string
  port: number
  /** Makes another empty database on this server and returns its URL. */
  createDatabase(name: string): Promise<string>
  /** Stops the server and deletes its files (idempotent). */
  stop(): Promise<void>
}

const PG_ROOT = '/usr/lib/postgresql'
const USER = 'app'

/** The `bin` folder of the newest PostgreSQL server installed, found by globbing `/usr/lib/postgresql/*\/bin`. */
export function postgresBinDir(): string {
  const versions = existsSync(PG_ROOT) ? readdirSync(PG_ROOT).filter((v) => existsSync(join(PG_ROOT, v, 'bin', 'initdb'))) : []
  versions.sort((a, b) => Number(b) - Number(a))
  if (!versions.length) throw new Error(`PostgreSQL server binaries not found under ${PG_ROOT}/*/bin: install them with: bash .ci/install-system.sh`)
  return join(PG_ROOT, versions[0], 'bin')
}

const asRoot = (): boolean => process.getuid?.() === 0

/** argv that runs `binary` as the user PostgreSQL accepts. */
const asServerUser = (argv: string[]): string[] => (asRoot() ? ['runuser', '-u', 'postgres', '--', ...argv] : argv)

function run(argv: string[], timeoutMs: number): Promise<string> {
  const [file, ...args] = asServerUser(argv)
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, killSignal: 'SIGKILL', encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${argv.join(' ')} failed: ${err.message}\n${stdout}${stderr}`.trim()))
      else resolve(stdout)
    })
  })
}

const tail = (file: string, lines = 20): string => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n') : '')

/** Starts a server with one empty database, `database` (default `longlink`). Takes about 1.5 s. */
export async function startPostgres(database = 'longlink'): Promise<PostgresServer> {
  const bin = postgresBinDir()
  const dir = mkdtempSync(join(tmpdir(), 'longlink-pg-'))
  const data = join(dir, 'data')
  const log = join(dir, 'postgres.log')
  if (asRoot()) {
    const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim())
    chownSync(dir, id('-u'), id('-g'))
  }

  let running = false
  // Synchronous, for the 'exit' hook: the last chance to not leave a server behind.
  const stopNow = (): void => {
    if (running) {
      const [file, ...args] = asServerUser([join(bin, 'pg_ctl'), '-D', data, '-m', 'immediate', '-w', '-t', '10', 'stop'])
      spawnSync(file, args, { stdio: 'ignore', timeout: 15_000 })
      running = false
    }
    rmSync(dir, { recursive: true, force: true })
  }
  process.once('exit', stopNow)

  try {
    // -N: no fsync of the new cluster; --no-locale: C collation, the same on every machine.
    await run([join(bin, 'initdb'), '-D', data, '-A', 'trust', '-U', USER, '-E', 'UTF8', '--no-locale', '-N'], 60_000)
    let port = 0
    for (let attempt = 1; !running; attempt++) {
      port = await freePort()
      // -l: the server's output goes to a file; inherited, it would hold our pipe open and the start would never end.
      const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`
      try {
        await run([join(bin, 'pg_ctl'), '-D', data, '-l', log, '-o', options, '-w', '-t', '30', 'start'], 40_000)
        running = true
      } catch (err) {
        // Most likely someone took the port between freePort() and the bind: try another one.
        if (attempt >= 3) throw new Error(`${(err as Error).message}\n${tail(log)}`)
      }
    }

    const urlOf = (db: string) => `postgres://${USER}@127.0.0.1:${port}/${db}`
    const createDatabase = async (name: string): Promise<string> => {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`createDatabase: ${JSON.stringify(name)} is not a plain lower-case name`)
      const client = new pg.Client({ connectionString: urlOf('postgres'), connectionTimeoutMillis: 5000 })
      await client.connect()
      try {
        await client.query(`CREATE DATABASE ${name}`)
      } finally {
        await client.end()
      }
      return urlOf(name)
    }

    const url = await createDatabase(database)
    let stopping: Promise<void> | undefined
    return {
      url,
      port,
      createDatabase,
      stop: () =>
        (stopping ??= (async () => {
          process.removeListener('exit', stopNow)
          try {
            await run([join(bin, 'pg_ctl'), '-D', data, '-m', 'fast', '-w', '-t', '10', 'stop'], 15_000)
          } catch {
            killPostmaster(data)
          } finally {
            running = false
            stopNow()
          }
        })()),
    }
  } catch (err) {
    process.removeListener('exit', stopNow)
    stopNow()
    throw err
  }
}

/** Last resort when pg_ctl cannot stop it: SIGKILL to the postmaster named in its pid file. */
function killPostmaster(data: string): void {
  const pidFile = join(data, 'postmaster.pid')
  if (!existsSync(pidFile)) return
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0])
  if (Number.isInteger(pid) && pid > 0) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
}
