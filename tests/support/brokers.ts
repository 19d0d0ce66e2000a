/**
 * Real MQTT brokers on 127.0.0.1 for integration tests:
 *
 * - {@link startAedes}: aedes (MQTT 3.1.1 only) in this process, behind a `ws` WebSocket server
 *   (optionally a plain TCP listener too). stop()/start() keep the port and the broker instance, so
 *   retained messages and non-clean sessions (aedes' in-memory persistence) survive a "restart".
 * - {@link startMosquitto}: the Debian `mosquitto` binary (MQTT 3.1.1 and 5) as a child process with
 *   its own config, ports and temp dir; it can be stopped, restarted on the same ports, and frozen
 *   with SIGSTOP to make a half-open link. Install it with `.ci/install-system.sh`.
 *
 * Everything is torn down by close(); a spawned mosquitto is also killed when the process exits.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import { freePort } from './ports'
import os from 'node:os'
import path from 'node:path'
import type { Duplex } from 'node:stream'
import { Aedes } from 'aedes'
import { createWebSocketStream, WebSocketServer } from 'ws'

// ---------------------------------------------------------------------------------------------
// shared helpers

export { freePort } from './ports'

/** Resolves once a TCP connect to 127.0.0.1:`port` succeeds; one attempt, bounded by `timeoutMs`. */
function tryConnect(port: number, timeoutMs = 250): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port })
    const done = (ok: boolean): void => {
      clearTimeout(timer)
      sock.removeAllListeners()
      sock.on('error', () => {})
      sock.destroy()
      resolve(ok)
    }
    const timer = setTimeout(() => done(false), timeoutMs)
    sock.once('connect', () => done(true))
    sock.once('error', () => done(false))
  })
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

// ---------------------------------------------------------------------------------------------
// aedes

/** The aedes `Client` object as handed to the auth hooks. */
export type AedesClient = Parameters<Aedes['authenticate']>[0]
/** One subscription as handed to `authorizeSubscribe`. */
export type AedesSubscription = Parameters<Aedes['authorizeSubscribe']>[1]

/** Options of {@link startAedes}. */
export interface AedesOptions {
  /**
   * Login check. `true` accepts; `false` refuses with CONNACK return code 4 (bad username or
   * password). Throwing (or rejecting) refuses with the error's `returnCode` if it is 2..5, else 5
   * (not authorized), e.g. `throw Object.assign(new Error('no'), { returnCode: 5 })`.
   * `password` is the UTF-8 decoding of the CONNECT password (undefined when absent).
   */
  authenticate?: (client: AedesClient, username: string | undefined, password: string | undefined) => boolean | Promise<boolean>
  /** Subscription check: `false` grants nothing (SUBACK 0x80 for that topic). */
  authorizeSubscribe?: (client: AedesClient, sub: AedesSubscription) => boolean
  /** Also open a plain MQTT-over-TCP listener on 127.0.0.1 (its port in `tcpPort`). */
  tcp?: boolean
  /** WebSocket port (default: OS-assigned, then kept across stop/start). */
  port?: number
}

/** Options of {@link AedesBroker.publish}. */
export interface PublishOptions {
  qos?: 0 | 1 | 2
  retain?: boolean
}

/** A running aedes broker behind a WebSocket (and optionally TCP) listener. */
export interface AedesBroker {
  /** `ws://127.0.0.1:PORT/mqtt` (any path is accepted). */
  readonly url: string
  /** WebSocket port; fixed for the broker's life. */
  readonly port: number
  /** Plain TCP MQTT port when started with `tcp: true`; fixed for the broker's life. */
  readonly tcpPort?: number
  /** The aedes instance itself (events: `client`, `clientDisconnect`, `publish`, `subscribe`, ...). */
  readonly broker: Aedes
  /** Whether the listeners are up (false between stop() and start()). */
  readonly listening: boolean
  /** Number of MQTT clients currently connected (CONNACKed) to the broker. */
  clients(): number
  /** Publishes from the server side (retained messages are stored as usual). */
  publish(topic: string, payload: string | Buffer | Uint8Array, opts?: PublishOptions): Promise<void>
  /** Destroys every client socket and closes the listeners; the broker and its state stay. */
  stop(): Promise<void>
  /** Listens again on the same port(s) with the same broker instance. */
  start(): Promise<void>
  /** stop() then start(). */
  restart(): Promise<void>
  /** stop() and close the broker for good. */
  close(): Promise<void>
}

/** Starts aedes on 127.0.0.1 behind `ws` (subprotocol `mqtt`/`mqttv3.1` echoed), MQTT 3.1.1. */
export async function startAedes(opts: AedesOptions = {}): Promise<AedesBroker> {
  const authenticateHook = opts.authenticate
  const authorizeSubscribeHook = opts.authorizeSubscribe
  const broker = await Aedes.createBroker({
    ...(authenticateHook && {
      authenticate: (client, username, password, done) => {
        Promise.resolve()
          .then(() => authenticateHook(client, username, password?.toString('utf8')))
          .then(
            (ok) => {
              if (ok) done(null, true)
              else done(Object.assign(new Error('Bad username or password'), { returnCode: 4 as const }), false)
            },
            (err: unknown) => {
              const e = err instanceof Error ? err : new Error(String(err))
              const code = (e as { returnCode?: unknown }).returnCode
              const returnCode = typeof code === 'number' && code >= 2 && code <= 5 ? code : 5
              done(Object.assign(e, { returnCode }), false)
            },
          )
      },
    }),
    ...(authorizeSubscribeHook && {
      authorizeSubscribe: (client, sub, callback) => {
        let ok = false
        try {
          ok = authorizeSubscribeHook(client, sub)
        } catch {
          ok = false
        }
        callback(null, ok ? sub : null)
      },
    }),
  })

  const sockets = new Set<net.Socket>()
  const streams = new Set<Duplex>()
  const track = (sock: net.Socket): void => {
    sockets.add(sock)
    sock.once('close', () => sockets.delete(sock))
  }

  const httpServer = http.createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' })
    res.end('MQTT over WebSocket only\n')
  })
  httpServer.on('connection', track)
  const wss = new WebSocketServer({
    server: httpServer,
    handleProtocols: (offered) => {
      if (offered.has('mqtt')) return 'mqtt'
      if (offered.has('mqttv3.1')) return 'mqttv3.1'
      return false
    },
  })
  wss.on('connection', (ws, req) => {
    const stream = createWebSocketStream(ws)
    streams.add(stream)
    stream.on('error', () => {})
    stream.once('close', () => streams.delete(stream))
    broker.handle(stream, req)
  })
  wss.on('error', () => {})

  let tcpServer: net.Server | undefined
  if (opts.tcp) {
    tcpServer = net.createServer((sock) => {
      track(sock)
      sock.on('error', () => {})
      broker.handle(sock)
    })
  }

  const listen = (srv: net.Server, port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err)
      srv.once('error', onError)
      srv.listen(port, '127.0.0.1', () => {
        srv.off('error', onError)
        resolve((srv.address() as net.AddressInfo).port)
      })
    })
  const closeServer = (srv: net.Server): Promise<void> =>
    new Promise((resolve) => {
      if (!srv.listening) return resolve()
      srv.close(() => resolve())
    })

  let port = await listen(httpServer, opts.port ?? 0)
  let tcpPort = tcpServer ? await listen(tcpServer, 0) : undefined
  let listening = true
  let closed = false

  const stop = async (): Promise<void> => {
    if (!listening) return
    listening = false
    for (const ws of wss.clients) ws.terminate()
    for (const s of streams) s.destroy()
    for (const s of sockets) s.destroy()
    await Promise.all([closeServer(httpServer), tcpServer ? closeServer(tcpServer) : undefined])
    // aedes closes its clients asynchronously once their streams are gone; wait for that (bounded).
    const deadline = Date.now() + 2000
    while (broker.connectedClients > 0 && Date.now() < deadline) await sleep(5)
  }
  const start = async (): Promise<void> => {
    if (closed) throw new Error('aedes broker is closed')
    if (listening) return
    port = await listen(httpServer, port)
    if (tcpServer && tcpPort !== undefined) tcpPort = await listen(tcpServer, tcpPort)
    listening = true
  }

  return {
    get url() {
      return `ws://127.0.0.1:${port}/mqtt`
    },
    get port() {
      return port
    },
    get tcpPort() {
      return tcpPort
    },
    broker,
    get listening() {
      return listening
    },
    clients: () => broker.connectedClients,
    publish: (topic, payload, o = {}) =>
      new Promise<void>((resolve, reject) => {
        broker.publish(
          {
            cmd: 'publish',
            topic,
            payload: typeof payload === 'string' ? Buffer.from(payload, 'utf8') : Buffer.from(payload),
            qos: o.qos ?? 0,
            retain: o.retain ?? false,
            dup: false,
          },
          (err?: Error) => (err ? reject(err) : resolve()),
        )
      }),
    stop,
    start,
    restart: async () => {
      await stop()
      await start()
    },
    close: async () => {
      if (closed) return
      await stop()
      closed = true
      wss.close()
      await new Promise<void>((resolve) => broker.close(() => resolve()))
    },
  }
}

// ---------------------------------------------------------------------------------------------
// mosquitto

const MOSQUITTO_CANDIDATES = ['/usr/sbin/mosquitto', '/usr/local/sbin/mosquitto', '/usr/bin/mosquitto', '/usr/local/bin/mosquitto']
const PASSWD_CANDIDATES = ['/usr/bin/mosquitto_passwd', '/usr/local/bin/mosquitto_passwd', '/usr/sbin/mosquitto_passwd']

function findBinary(name: string, candidates: string[]): string | undefined {
  for (const c of candidates) {
    try {
      fs.accessSync(c, fs.constants.X_OK)
      return c
    } catch {
      /* next */
    }
  }
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue
    const c = path.join(dir, name)
    try {
      fs.accessSync(c, fs.constants.X_OK)
      return c
    } catch {
      /* next */
    }
  }
  return undefined
}

/**
 * Path of the mosquitto binary, or undefined when it is not installed. `MOSQUITTO_BIN` (env) overrides the
 * search: it must then name an executable, else mosquitto counts as missing.
 */
export function mosquittoPath(): string | undefined {
  const override = process.env.MOSQUITTO_BIN
  if (override) {
    try {
      fs.accessSync(override, fs.constants.X_OK)
      return override
    } catch {
      return undefined
    }
  }
  return findBinary('mosquitto', MOSQUITTO_CANDIDATES)
}

/** Whether the mosquitto binary is installed (tests can `describe.skipIf(!hasMosquitto())`). */
export function hasMosquitto(): boolean {
  return mosquittoPath() !== undefined
}

/** Options of {@link startMosquitto}. */
export interface MosquittoOptions {
  /** username → password; when given, anonymous logins are refused (`allow_anonymous false`). */
  users?: Record<string, string>
  /** Extra lines appended to the generated config (global section, before the listeners). */
  extraConfig?: string[]
}

/** A running mosquitto child process with an MQTT (TCP) and a WebSocket listener on loopback. */
export interface MosquittoBroker {
  /** `ws://127.0.0.1:WSPORT` (mosquitto accepts any path, e.g. `/mqtt`). */
  readonly url: string
  /** `mqtt://127.0.0.1:MQTTPORT`. */
  readonly mqttUrl: string
  readonly mqttPort: number
  readonly wsPort: number
  /** PID of the current mosquitto process (changes on start/restart; undefined while stopped). */
  readonly pid: number | undefined
  /** Whether the process is SIGSTOPped. */
  readonly paused: boolean
  /** The temp dir holding the config, password file and log. */
  readonly dir: string
  /** The generated config file. */
  readonly configFile: string
  /** Everything mosquitto logged so far (all runs). */
  log(): string
  /** SIGTERM (after SIGCONT if paused) and wait for exit (SIGKILL after 3 s). */
  stop(): Promise<void>
  /** Starts again with the same config and ports; resolves when both listeners accept TCP. */
  start(): Promise<void>
  /** stop() then start(). */
  restart(): Promise<void>
  /** SIGSTOP: the broker stays bound but goes silent (connections become half-open). */
  pause(): void
  /** SIGCONT. */
  resume(): void
  /** stop() and remove the temp dir. */
  close(): Promise<void>
}

const liveMosquittos = new Set<ChildProcess>()
const liveDirs = new Set<string>()
let exitHookInstalled = false
/** Safety net for a test that forgot close(): SIGKILL (works on a SIGSTOPped process too) and rm the temp dirs. */
function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on('exit', () => {
    for (const child of liveMosquittos) {
      try {
        child.kill('SIGKILL')
      } catch {
        /* already gone */
      }
    }
    for (const dir of liveDirs) {
      try {
        fs.rmSync(dir, { recursive: true, force: true })
      } catch {
        /* best effort */
      }
    }
  })
}

function writePasswordFile(file: string, users: Record<string, string>): void {
  const passwd = findBinary('mosquitto_passwd', PASSWD_CANDIDATES)
  if (!passwd) throw new Error('mosquitto_passwd not found: run .ci/install-system.sh (Debian: package mosquitto)')
  let first = true
  for (const [user, pass] of Object.entries(users)) {
    const args = first ? ['-b', '-c', file, user, pass] : ['-b', file, user, pass]
    const r = spawnSync(passwd, args, { encoding: 'utf8', timeout: 10_000 })
    if (r.status !== 0) {
      throw new Error(`mosquitto_passwd failed for user ${user}: ${r.error?.message ?? ''}${r.stderr}${r.stdout}`)
    }
    first = false
  }
  if (first) fs.writeFileSync(file, '') // empty users map: nobody can log in
}

/**
 * Starts mosquitto on 127.0.0.1 with a generated config in a temp dir: a `protocol mqtt` listener and a
 * `protocol websockets` listener (both needed: a websockets-only config fails to start), persistence off
 * (non-clean sessions still live in memory while the process runs), anonymous allowed unless `users`.
 */
export async function startMosquitto(opts: MosquittoOptions = {}): Promise<MosquittoBroker> {
  const bin = mosquittoPath()
  if (!bin) {
    throw new Error('mosquitto is not installed: run `bash .ci/install-system.sh` (as root) to install it')
  }
  installExitHook()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'longlink-mosquitto-'))
  liveDirs.add(dir)
  const configFile = path.join(dir, 'mosquitto.conf')
  const logFile = path.join(dir, 'mosquitto.log')
  try {
    let passwordFile: string | undefined
    if (opts.users) {
      passwordFile = path.join(dir, 'passwd')
      writePasswordFile(passwordFile, opts.users)
    }

    // Ports are picked by binding :0 and closing, so another process may grab one before mosquitto binds
    // it: on a failed first start, pick fresh ports and try again.
    let lastError: unknown
    for (let attempt = 0; attempt < 3; attempt++) {
      const mqttPort = await freePort()
      let wsPort = await freePort()
      while (wsPort === mqttPort) wsPort = await freePort()
      fs.writeFileSync(configFile, mosquittoConfig({ mqttPort, wsPort, passwordFile, extra: opts.extraConfig }))
      const handle = new MosquittoProcess(bin, dir, configFile, logFile, mqttPort, wsPort)
      try {
        await handle.start()
        return handle.api()
      } catch (err) {
        lastError = err
        await handle.stop()
      }
    }
    throw lastError
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true })
    liveDirs.delete(dir)
    throw err
  }
}

function mosquittoConfig(o: { mqttPort: number; wsPort: number; passwordFile?: string; extra?: string[] }): string {
  const lines = [
    '# generated by tests/support/brokers.ts',
    'persistence false',
    'log_dest stdout',
    'log_type error',
    'log_type warning',
    'log_type notice',
    'log_type information',
    'connection_messages true',
    'per_listener_settings false',
    o.passwordFile ? 'allow_anonymous false' : 'allow_anonymous true',
    ...(o.passwordFile ? [`password_file ${o.passwordFile}`] : []),
    // Run as root, mosquitto drops to the `mosquitto` user, which cannot read our 0700 temp dir
    // ("Unable to open pwfile"); `user root` keeps it as is (it only logs a warning).
    ...(process.getuid?.() === 0 ? ['user root'] : []),
    ...(o.extra ?? []),
    '',
    `listener ${o.mqttPort} 127.0.0.1`,
    'protocol mqtt',
    '',
    // For a websockets listener an address binds all interfaces in mosquitto 2.0.11 (libwebsockets
    // reads it as an interface name); the interface name `lo` binds loopback only.
    `listener ${o.wsPort} lo`,
    'protocol websockets',
    '',
  ]
  return lines.join('\n')
}

class MosquittoProcess {
  child: ChildProcess | undefined
  paused = false
  exited: Promise<void> = Promise.resolve()

  constructor(
    readonly bin: string,
    readonly dir: string,
    readonly configFile: string,
    readonly logFile: string,
    readonly mqttPort: number,
    readonly wsPort: number,
  ) {}

  log(): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8')
    } catch {
      return ''
    }
  }

  async start(): Promise<void> {
    if (this.child) return
    const fd = fs.openSync(this.logFile, 'a')
    let child: ChildProcess
    try {
      child = spawn(this.bin, ['-c', this.configFile], { cwd: this.dir, stdio: ['ignore', fd, fd] })
    } finally {
      fs.closeSync(fd)
    }
    this.child = child
    this.paused = false
    liveMosquittos.add(child)
    let exitedEarly: string | undefined
    this.exited = new Promise<void>((resolve) => {
      const done = (code: number | null, signal: NodeJS.Signals | null): void => {
        liveMosquittos.delete(child)
        if (this.child === child) this.child = undefined
        exitedEarly = `mosquitto exited (code ${code}, signal ${signal})`
        resolve()
      }
      child.once('exit', done)
      child.once('error', () => done(null, null))
    })

    const deadline = Date.now() + 5000
    const ready = { mqtt: false, ws: false }
    while (Date.now() < deadline) {
      if (exitedEarly) break
      if (!ready.mqtt) ready.mqtt = await tryConnect(this.mqttPort)
      if (!ready.ws) ready.ws = await tryConnect(this.wsPort)
      if (ready.mqtt && ready.ws) return
      await sleep(25)
    }
    const why = exitedEarly ?? `listeners not ready within 5 s (mqtt ${ready.mqtt}, ws ${ready.ws})`
    await this.stop()
    throw new Error(`${why}; log:\n${this.log()}`)
  }

  async stop(): Promise<void> {
    const child = this.child
    if (!child) return
    if (this.paused) this.resume()
    child.kill('SIGTERM')
    const killed = await Promise.race([this.exited.then(() => true), sleep(3000).then(() => false)])
    if (!killed) {
      child.kill('SIGKILL')
      await this.exited
    }
  }

  pause(): void {
    if (!this.child) throw new Error('mosquitto is not running')
    this.child.kill('SIGSTOP')
    this.paused = true
  }

  resume(): void {
    if (!this.child) return
    this.child.kill('SIGCONT')
    this.paused = false
  }

  api(): MosquittoBroker {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this
    let closed = false
    return {
      url: `ws://127.0.0.1:${self.wsPort}`,
      mqttUrl: `mqtt://127.0.0.1:${self.mqttPort}`,
      mqttPort: self.mqttPort,
      wsPort: self.wsPort,
      get pid() {
        return self.child?.pid
      },
      get paused() {
        return self.paused
      },
      dir: self.dir,
      configFile: self.configFile,
      log: () => self.log(),
      stop: () => self.stop(),
      start: async () => {
        if (closed) throw new Error('mosquitto broker is closed')
        await self.start()
      },
      restart: async () => {
        await self.stop()
        await self.start()
      },
      pause: () => self.pause(),
      resume: () => self.resume(),
      close: async () => {
        if (closed) return
        closed = true
        await self.stop()
        fs.rmSync(self.dir, { recursive: true, force: true })
        liveDirs.delete(self.dir)
      },
    }
  }
}
