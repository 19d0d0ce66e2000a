/**
 * Vitest global setup: the Debian packages some tests need, the ones .ci/install-system.sh installs. All present: a
 * few existsSync calls and nothing printed. Something missing: installs it when this process can (root or
 * passwordless sudo, and apt-get), printing one line; otherwise stops the run with the command to type.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export interface Requirement {
  /** The Debian package that provides it. */
  pkg: string
  /** Which tests need it, for the messages. */
  neededBy: string
  /** Any of these files proves it is there (the paths the tests and .ci/install-system.sh look at). */
  files: string[]
  /** Or this command on PATH. */
  command?: string
}

export const REQUIREMENTS: Requirement[] = [
  {
    pkg: 'mosquitto',
    neededBy: 'the broker tests',
    files: ['/usr/sbin/mosquitto', '/usr/local/sbin/mosquitto', '/usr/bin/mosquitto', '/usr/local/bin/mosquitto'],
    command: 'mosquitto',
  },
  {
    pkg: 'mosquitto',
    neededBy: 'the broker tests',
    files: ['/usr/bin/mosquitto_passwd', '/usr/local/bin/mosquitto_passwd', '/usr/sbin/mosquitto_passwd'],
    command: 'mosquitto_passwd',
  },
  { pkg: 'chromium', neededBy: 'the browser tests', files: ['/usr/bin/chromium'] },
  { pkg: 'fonts-wqy-microhei', neededBy: 'the screenshots', files: ['/usr/share/fonts/truetype/wqy/wqy-microhei.ttc'] },
  {
    pkg: 'postgresql',
    neededBy: 'the PostgreSQL store tests',
    // A getter: the server's version is part of the path, so the folder is listed again after an install.
    get files() {
      return postgresInitdb()
    },
  },
  {
    pkg: 'redis-server',
    neededBy: 'the cluster tests',
    files: ['/usr/bin/redis-server', '/usr/local/bin/redis-server', '/usr/sbin/redis-server'],
    command: 'redis-server',
  },
]

/** `/usr/lib/postgresql/<version>/bin/initdb` of each version installed, else Debian 12's path (for the messages). */
function postgresInitdb(): string[] {
  const root = '/usr/lib/postgresql'
  const found = existsSync(root) ? readdirSync(root).map((version) => join(root, version, 'bin', 'initdb')) : []
  return [...found, join(root, '15', 'bin', 'initdb')]
}

const SCRIPT = '.ci/install-system.sh'
const ROOT = fileURLToPath(new URL('../..', import.meta.url))

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => dir !== '' && existsSync(join(dir, command)))
}

export function missing(requirements: Requirement[] = REQUIREMENTS): Requirement[] {
  return requirements.filter((r) => !r.files.some((f) => existsSync(f)) && !(r.command && onPath(r.command)))
}

/** The argv that runs the install script from here, or undefined when this process cannot install packages. */
export function installer(): string[] | undefined {
  if (!onPath('apt-get')) return undefined
  if (process.getuid?.() === 0) return ['bash', SCRIPT]
  if (onPath('sudo') && spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status === 0) return ['sudo', '-n', 'bash', SCRIPT]
  return undefined
}

function runScript(argv: string[]): void {
  const r = spawnSync(argv[0], argv.slice(1), { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 })
  if (r.status !== 0) {
    process.stderr.write(`${r.stdout ?? ''}${r.stderr ?? ''}`)
    throw new Error(`tests: ${argv.join(' ')} failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`}), its output is above`)
  }
}

const unique = (list: string[]) => [...new Set(list)]

export function ensureSystemPackages(requirements: Requirement[] = REQUIREMENTS, how = installer, run = runScript): void {
  const absent = missing(requirements)
  if (absent.length === 0) return
  const install = how()
  const pkgs = unique(absent.map((r) => r.pkg)).join(' ')
  const why = unique(absent.map((r) => r.neededBy)).join(' and ')
  if (!install) {
    if (!onPath('apt-get')) {
      const wanted = absent.map((r) => `${r.pkg} (${r.command ?? r.files[0]})`).join(', ')
      throw new Error(`tests: missing ${wanted}, needed by ${why}. Install them with this system's package manager.`)
    }
    const command = onPath('sudo') ? `sudo bash ${SCRIPT}` : `su -c 'bash ${SCRIPT}'`
    throw new Error(`tests: missing ${pkgs}, needed by ${why}. Install them once with: ${command}`)
  }
  console.log(`tests: installing ${pkgs} (needed by ${why}) with apt-get…`)
  run(install)
  const still = missing(requirements)
  if (still.length) throw new Error(`tests: ${SCRIPT} ran, yet still missing: ${still.map((r) => r.files[0]).join(', ')}`)
}

export default function setup(): void {
  ensureSystemPackages()
}
