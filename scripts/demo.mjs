#!/usr/bin/env node
// Runs the demo server (server/demo.ts) and keeps it running: `node scripts/demo.mjs` (the last step of `npm run demo`).
//
// - The server runs as `node --import tsx server/demo.ts`, one process (no tsx wrapper in between), in its own process
//   group, with an IPC channel: when this runner dies in any way, even SIGKILL, the channel closes and the server
//   stops by itself instead of staying on its port.
// - SIGINT, SIGTERM and SIGHUP are forwarded to the server's process group; once the server has exited after such a
//   signal, the runner exits with its code. A server that does not stop within STOP_GRACE_MS is killed.
// - A server that exits without a forwarded signal crashed: it is started again after 1 s, then 2, 4, 8, 10 s (the
//   delay resets after a run of STABLE_MS); after MAX_CRASHES crashes within CRASH_WINDOW_MS the runner gives up.
import { spawn } from 'node:child_process'
import { constants } from 'node:os'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const FIRST_DELAY_MS = 1000
const MAX_DELAY_MS = 10_000
const MAX_CRASHES = 5
const CRASH_WINDOW_MS = 60_000
/** A run this long counts as healthy: the next crash waits the first delay again. */
const STABLE_MS = 60_000
/** The server closes itself within 5 s of a signal; past this it is killed. */
const STOP_GRACE_MS = 8000

/** @type {import('node:child_process').ChildProcess | undefined} */
let child
/** The signal forwarded to the server, once one was: the runner is stopping. */
let forwarded
let startedAt = 0
let delay = FIRST_DELAY_MS
/** @type {number[]} */
let crashes = []
/** @type {NodeJS.Timeout | undefined} */
let restartTimer

/** One line on stdout, prefixed so it stands out from the server's own lines. */
function say(line) {
  process.stdout.write(`[demo] ${line}\n`)
}

/** Sends `signal` to the server's whole process group (it leads its own group: detached). */
function signalServer(signal) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return
  try {
    process.kill(-child.pid, signal)
  } catch {
    // Already gone.
  }
}

function start() {
  restartTimer = undefined
  startedAt = Date.now()
  const server = spawn(process.execPath, ['--import', 'tsx', 'server/demo.ts'], {
    cwd: root,
    // Its own process group: a terminal's Ctrl+C reaches the runner only, which forwards it once.
    detached: true,
    // stdin is not the server's: a background process group reading the terminal would be stopped by it.
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  child = server
  server.on('error', (error) => {
    say(`cannot start the server: ${error.message}`)
    process.exit(1)
  })
  server.on('spawn', () => say(`server started, pid=${server.pid}`))
  server.on('exit', (code, signal) => exited(server, code, signal))
}

function exited(server, code, signal) {
  if (server !== child) return
  child = undefined
  const how = signal ? `signal ${signal}` : `code ${code}`
  if (forwarded) {
    say(`server pid=${server.pid} stopped (${how})`)
    process.exit(code ?? 128 + (constants.signals[signal] ?? 0))
  }
  const now = Date.now()
  if (now - startedAt >= STABLE_MS) delay = FIRST_DELAY_MS
  crashes = crashes.filter((t) => now - t < CRASH_WINDOW_MS)
  crashes.push(now)
  if (crashes.length >= MAX_CRASHES) {
    say(
      `server pid=${server.pid} exited (${how}); it crashed ${crashes.length} times within ${CRASH_WINDOW_MS / 1000} s: giving up. See its log lines above.`,
    )
    process.exit(1)
  }
  say(
    `server pid=${server.pid} exited (${how}); restarting in ${delay / 1000} s (crash ${crashes.length} of ${MAX_CRASHES} allowed within ${CRASH_WINDOW_MS / 1000} s)`,
  )
  restartTimer = setTimeout(start, delay)
  delay = Math.min(delay * 2, MAX_DELAY_MS)
}

function onSignal(signal) {
  if (forwarded) {
    // A second Ctrl+C: the same signal again, in case the first one came before the server listened for it.
    signalServer(signal)
    return
  }
  forwarded = signal
  if (!child) {
    // Between a crash and its restart: nothing runs, nothing to wait for.
    clearTimeout(restartTimer)
    say(`stopped (${signal}) while waiting to restart the server`)
    process.exit(128 + constants.signals[signal])
  }
  say(`${signal}: stopping the server pid=${child.pid}`)
  signalServer(signal)
  setTimeout(() => {
    say(`the server did not stop within ${STOP_GRACE_MS / 1000} s: killing it`)
    signalServer('SIGKILL')
  }, STOP_GRACE_MS).unref()
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => onSignal(signal))
// However this runner ends (an exception here included), the server does not outlive it.
process.on('exit', () => signalServer('SIGTERM'))

start()
