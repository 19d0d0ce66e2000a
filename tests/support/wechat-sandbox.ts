/**
 * A WeChat-mini-program-shaped runtime for uni-app `mp-weixin` build output (`dist/build/mp-weixin`), so tests can
 * load the built files the way the WeChat JS engine does and catch load-time incompatibilities that Node, jsdom or a
 * browser would hide.
 *
 * What is reproduced (see tests/../shared notes "MQTT.js 5 on mini-programs" and decompiled mini-program packages):
 * - A fresh `node:vm` context: its global offers only what V8 gives a new context (ECMAScript built-ins: Object,
 *   Promise, Uint8Array, JSON, globalThis, Intl, WebAssembly…), plus `console`, the four timer functions, `wx`, a
 *   module-level-style `global` (a plain object, NOT the context global: uni's runtime writes `global.createApp`…)
 *   and the framework functions the built files call at load: `App`, `Page`, `Component`, `Behavior`, `getApp`,
 *   `getCurrentPages` (recorders, nothing is instantiated or rendered).
 * - Every JS file evaluated inside the same wrapper WeChat uses:
 *   `(function(require, module, exports, window, document, frames, self, location, navigator, localStorage, history,
 *   Caches, screen, alert, confirm, prompt, XMLHttpRequest, WebSocket){ … })`, called with a CommonJS `require`,
 *   `module`, `exports` and undefined for every browser name. A polyfill that sets `globalThis.self` therefore does
 *   not reach code that reads the bare name `self`, exactly as on a phone.
 * - `require` resolves relative to the requiring file (`/x` from the package root), adds `.js` when missing, refuses
 *   paths outside the package, caches modules per sandbox and supports cycles (the partial `exports` is returned).
 *
 * Explicitly absent from the global (WeChat phones do not offer them; {@link ABSENT_GLOBALS},
 * {@link assertWeChatGlobals}): window, document, self, navigator, location, Buffer, process, TextEncoder,
 * TextDecoder, URL, AbortController, atob, btoa, queueMicrotask, setImmediate, WebSocket, XMLHttpRequest, fetch,
 * require, module.
 *
 * `wx`: the object passed in `options.wx` (e.g. a socket-task simulator) is never mutated. The sandbox sees a Proxy
 * over it: every method found on it or its prototype chain is an own, enumerable property (bound to the original
 * object, since uni copies `wx` methods with `for…in` into a plain object and calls them detached), reads of other
 * names fall through, and writes (uni assigns `wx.createApp`, `wx.createPage`, `wx.$onErrorHandlers`…) land on the
 * wrapper. `createApp` / `createPage` / `createComponent` are provided up front (forwarding to App / Component) for
 * files that run before uni's vendor.js replaces them, and so are WeChat-shaped `getAppBaseInfo`, `getSystemInfoSync`,
 * `getDeviceInfo`, `getWindowInfo` and `getLaunchOptionsSync` when the host object lacks them (uni's vendor.js calls
 * them at load; every WeChat base library has them).
 */
import fs from 'node:fs'
import path from 'node:path'
import vm from 'node:vm'

/** Parameter names of WeChat's per-file wrapper, in order; all but the first three are bound to undefined. */
export const WRAPPER_PARAMS = [
  'require',
  'module',
  'exports',
  'window',
  'document',
  'frames',
  'self',
  'location',
  'navigator',
  'localStorage',
  'history',
  'Caches',
  'screen',
  'alert',
  'confirm',
  'prompt',
  'XMLHttpRequest',
  'WebSocket',
] as const

/** Globals a WeChat phone runtime does not offer; the sandbox guarantees `typeof name === 'undefined'` for each. */
export const ABSENT_GLOBALS = [
  'window',
  'document',
  'self',
  'navigator',
  'location',
  'Buffer',
  'process',
  'TextEncoder',
  'TextDecoder',
  'URL',
  'AbortController',
  'atob',
  'btoa',
  'queueMicrotask',
  'setImmediate',
  'WebSocket',
  'XMLHttpRequest',
  'fetch',
  'require',
  'module',
] as const

/** Options of {@link loadMiniProgram}. */
export interface LoadMiniProgramOptions {
  /** The host `wx` object (e.g. `createWxSimulator()`); wrapped, never mutated. */
  wx: object
  /** Extra names put on the context global (after the defaults, so they may override them). */
  extraGlobals?: Record<string, unknown>
  /**
   * The global name the host object is given (default `'wx'`). Another mini-program family shaped like WeChat's runtime
   * (Alipay's `my`, Douyin's `tt`) passes its own name: the object in `options.wx` is then exposed under it, and `wx`
   * is not defined.
   */
  hostName?: string
  /**
   * Sync APIs put on the host when it lacks them, as name → the JSON value each returns (a fresh copy made in the
   * sandbox's realm per call). They replace the WeChat-shaped defaults (`getAppBaseInfo`, `getSystemInfoSync`…), which
   * a host of another family would not offer.
   */
  hostDefaults?: Record<string, unknown>
}

/** What the framework functions were called with, in call order. */
export interface FrameworkRecord {
  /** The options of the one `App()` call (WeChat allows only one). */
  app: Record<string, unknown> | undefined
  pages: unknown[]
  components: unknown[]
  behaviors: unknown[]
}

/** A loaded mini-program package. */
export interface MiniProgramSandbox {
  /** Requires a file of the package by its path from the package root (`.js` optional), like WeChat's `require`. */
  require(path: string): unknown
  /** The vm context (its global is the mini-program's global). */
  context: vm.Context
  /** The module-level `global` object the files see (a plain object, not the context global). */
  global: Record<string, unknown>
  /** The wrapper the sandbox sees as `wx` (writes made by the loaded code end up here). */
  wx: Record<string, unknown>
  /** Calls recorded on App / Page / Component / Behavior. */
  framework: FrameworkRecord
  /** Evaluates an expression on the sandbox global (not inside a file wrapper). */
  evaluate(code: string): unknown
  /** Clears every timer the sandboxed code started and is still pending. */
  dispose(): void
}

const WRAPPER_HEAD = `(function(${WRAPPER_PARAMS.join(', ')}){`

/** Names of the methods of `target` and its prototype chain (Object.prototype excluded), plus its own keys. */
function delegatedKeys(target: object): string[] {
  const keys = new Set<string>()
  for (const key of Object.keys(target)) keys.add(key)
  for (let proto = Object.getPrototypeOf(target); proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    for (const key of Object.getOwnPropertyNames(proto)) {
      if (key === 'constructor') continue
      const desc = Object.getOwnPropertyDescriptor(proto, key)
      if (desc && typeof desc.value === 'function') keys.add(key)
    }
  }
  return [...keys]
}

/**
 * The `wx` the sandbox sees: a Proxy that delegates to `host` (methods bound to it, so they survive being copied and
 * called detached, as uni does), keeps writes to itself, and enumerates host methods as own enumerable properties.
 */
function wrapWx(host: object, own: Record<string | symbol, unknown>): Record<string, unknown> {
  const bound = new Map<PropertyKey, (...args: unknown[]) => unknown>()
  const read = (key: PropertyKey): unknown => {
    if (Object.prototype.hasOwnProperty.call(own, key)) return own[key as string]
    const value = Reflect.get(host, key, host)
    if (typeof value !== 'function') return value
    let fn = bound.get(key)
    if (!fn) {
      fn = (value as (...args: unknown[]) => unknown).bind(host)
      bound.set(key, fn)
    }
    return fn
  }
  const hostKeys = delegatedKeys(host)
  return new Proxy(own, {
    get: (_t, key) => read(key),
    set: (_t, key, value) => {
      own[key as string] = value
      return true
    },
    has: (_t, key) => Object.prototype.hasOwnProperty.call(own, key) || Reflect.has(host, key),
    deleteProperty: (_t, key) => {
      delete own[key as string]
      return true
    },
    ownKeys: () => [...new Set([...Reflect.ownKeys(own), ...hostKeys])],
    getOwnPropertyDescriptor: (_t, key) => {
      if (Object.prototype.hasOwnProperty.call(own, key)) return Object.getOwnPropertyDescriptor(own, key)
      if (!hostKeys.includes(key as string) && !Reflect.has(host, key)) return undefined
      return { value: read(key), writable: true, enumerable: true, configurable: true }
    },
    defineProperty: (_t, key, desc) => Reflect.defineProperty(own, key, desc),
  }) as Record<string, unknown>
}

/**
 * Loads a uni-app mp-weixin build output folder the way the WeChat runtime does (see the file header).
 * Nothing runs until `require` is called.
 */
export function loadMiniProgram(dir: string, options: LoadMiniProgramOptions): MiniProgramSandbox {
  if (!options || typeof options.wx !== 'object' || options.wx === null) throw new TypeError('loadMiniProgram: options.wx is required')
  const root = path.resolve(dir)
  const context = vm.createContext({}, { name: `wechat-sandbox:${root}` })
  // Objects handed to the sandboxed code are made inside the context so their prototypes are the context's own.
  const newObject = (): Record<string, unknown> => vm.runInContext('({})', context) as Record<string, unknown>

  const framework: FrameworkRecord = { app: undefined, pages: [], components: [], behaviors: [] }
  let appInstance: Record<string, unknown> | undefined
  const App = (opts: Record<string, unknown>): void => {
    if (framework.app) throw new Error('App() may only be called once')
    framework.app = opts
    appInstance = appInstance ? Object.assign(appInstance, opts) : opts
  }
  const Page = (opts: unknown): void => void framework.pages.push(opts)
  const Component = (opts: unknown): void => void framework.components.push(opts)
  const Behavior = (opts: unknown): unknown => {
    framework.behaviors.push(opts)
    return opts
  }
  // WeChat: undefined before App() unless `allowDefault`, which yields a default instance App() later merges into.
  const getApp = (opts?: { allowDefault?: boolean }): unknown => {
    if (!appInstance && opts && opts.allowDefault) appInstance = newObject()
    return appInstance
  }
  const getCurrentPages = (): unknown[] => vm.runInContext('[]', context) as unknown[]

  const timers = new Set<ReturnType<typeof setTimeout>>()
  const intervals = new Set<ReturnType<typeof setInterval>>()
  const sandboxSetTimeout = (fn: unknown, ms?: number, ...args: unknown[]): ReturnType<typeof setTimeout> => {
    if (typeof fn !== 'function') throw new TypeError('setTimeout: callback must be a function')
    const timer = setTimeout(() => {
      timers.delete(timer)
      ;(fn as (...a: unknown[]) => void)(...args)
    }, ms)
    timers.add(timer)
    return timer
  }
  const sandboxClearTimeout = (timer: ReturnType<typeof setTimeout> | undefined): void => {
    if (timer === undefined || timer === null) return
    timers.delete(timer)
    clearTimeout(timer)
  }
  const sandboxSetInterval = (fn: unknown, ms?: number, ...args: unknown[]): ReturnType<typeof setInterval> => {
    if (typeof fn !== 'function') throw new TypeError('setInterval: callback must be a function')
    const timer = setInterval(() => (fn as (...a: unknown[]) => void)(...args), ms)
    intervals.add(timer)
    return timer
  }
  const sandboxClearInterval = (timer: ReturnType<typeof setInterval> | undefined): void => {
    if (timer === undefined || timer === null) return
    intervals.delete(timer)
    clearInterval(timer)
  }

  const wxOwn = newObject() as Record<string | symbol, unknown>
  // uni's vendor.js replaces these with its own; they exist for files that would call them before it loads.
  wxOwn.createApp = (opts: unknown) => App(opts as Record<string, unknown>)
  wxOwn.createPage = (opts: unknown) => Component(opts)
  wxOwn.createComponent = (opts: unknown) => Component(opts)
  // Base-info sync APIs every WeChat base library has and uni's vendor.js calls at load (`getAppBaseInfo()`, falling
  // back to `getSystemInfoSync()`; `getLaunchOptionsSync()`): WeChat-shaped defaults, used only when the host lacks them.
  const hostWx = options.wx as Record<string, unknown>
  const baseInfo = {
    SDKVersion: '3.8.0',
    version: '8.0.50',
    language: 'zh_CN',
    theme: 'light',
    host: { env: 'WeChat' },
    enableDebug: false,
  }
  const deviceInfo = { brand: 'sandbox', model: 'sandbox', platform: 'android', system: 'Android 14', pixelRatio: 2 }
  const windowInfo = {
    pixelRatio: 2,
    screenWidth: 375,
    screenHeight: 812,
    windowWidth: 375,
    windowHeight: 812,
    statusBarHeight: 44,
    safeArea: { left: 0, right: 375, top: 44, bottom: 812, width: 375, height: 768 },
    screenTop: 0,
  }
  const inContext = (value: unknown): unknown => vm.runInContext(`(${JSON.stringify(value)})`, context)
  const defaults: Record<string, () => unknown> = {
    getAppBaseInfo: () => inContext(baseInfo),
    getDeviceInfo: () => inContext(deviceInfo),
    getWindowInfo: () => inContext(windowInfo),
    getSystemInfoSync: () => inContext({ ...deviceInfo, ...windowInfo, ...baseInfo }),
    getLaunchOptionsSync: () => inContext({ path: 'pages/index/index', scene: 1001, query: {}, referrerInfo: {}, forwardMaterials: [] }),
  }
  const hostDefaults = options.hostDefaults
    ? Object.fromEntries(Object.entries(options.hostDefaults).map(([name, value]) => [name, () => inContext(value)]))
    : defaults
  for (const [name, fn] of Object.entries(hostDefaults)) if (typeof hostWx[name] !== 'function') wxOwn[name] = fn
  const wx = wrapWx(options.wx, wxOwn)
  const moduleGlobal = newObject()

  const globals: Record<string, unknown> = {
    console,
    setTimeout: sandboxSetTimeout,
    clearTimeout: sandboxClearTimeout,
    setInterval: sandboxSetInterval,
    clearInterval: sandboxClearInterval,
    [options.hostName ?? 'wx']: wx,
    global: moduleGlobal,
    App,
    Page,
    Component,
    Behavior,
    getApp,
    getCurrentPages,
    ...options.extraGlobals,
  }
  for (const [name, value] of Object.entries(globals)) {
    Object.defineProperty(context, name, { value, writable: true, configurable: true, enumerable: false })
  }

  interface Mod {
    id: string
    exports: unknown
    loaded: boolean
  }
  const cache = new Map<string, Mod>()

  /**
   * A package name (`name`, `name/sub`), as WeChat resolves it after DevTools' "build npm": `miniprogram_npm/name`
   * beside the requiring file or in a folder above it (up to the package root), then `sub.js`, else `index.js`.
   */
  const resolvePackage = (fromDir: string, request: string): string | undefined => {
    for (let dir = fromDir; ; dir = path.dirname(dir)) {
      const base = path.join(dir, 'miniprogram_npm', request)
      for (const file of [`${base}.js`, path.join(base, 'index.js')]) if (fs.existsSync(file)) return file
      if (path.relative(root, dir) === '' || path.relative(root, dir).startsWith('..')) return undefined
    }
  }

  const resolveFrom = (fromDir: string, request: string): string => {
    if (typeof request !== 'string' || request === '') throw new TypeError(`require: expected a path, got ${String(request)}`)
    const bare = !request.startsWith('.') && !request.startsWith('/')
    const found = bare ? resolvePackage(fromDir, request) : undefined
    if (found) return found
    let file = request.startsWith('/') ? path.join(root, request) : path.resolve(fromDir, request)
    if (!file.endsWith('.js')) file += '.js'
    const rel = path.relative(root, file)
    if (rel.startsWith('..') || path.isAbsolute(rel)) throw new Error(`module "${request}" is outside the mini-program package`)
    return file
  }

  const load = (file: string): unknown => {
    const cached = cache.get(file)
    if (cached) return cached.exports
    let source: string
    try {
      source = fs.readFileSync(file, 'utf8')
    } catch {
      // WeChat's wording for a missing module.
      throw new Error(`module '${path.relative(root, file).split(path.sep).join('/')}' is not defined, require args is '${file}'`)
    }
    const mod = newObject() as unknown as Mod
    mod.id = path.relative(root, file).split(path.sep).join('/')
    mod.exports = newObject()
    mod.loaded = false
    cache.set(file, mod)
    // The wrapper head sits on its own line (lineOffset -1), so stack traces show the file's real lines and columns.
    const script = new vm.Script(`${WRAPPER_HEAD}\n${source}\n})`, { filename: file, lineOffset: -1 })
    const fn = script.runInContext(context) as (...args: unknown[]) => void
    const localRequire = (request: string): unknown => load(resolveFrom(path.dirname(file), request))
    try {
      fn.call(undefined, localRequire, mod, mod.exports)
    } catch (error) {
      cache.delete(file)
      throw error
    }
    mod.loaded = true
    return mod.exports
  }

  return {
    require: (request: string) => load(resolveFrom(root, request.replace(/^\/+/, ''))),
    context,
    global: moduleGlobal,
    wx,
    framework,
    evaluate: (code: string) => vm.runInContext(code, context),
    dispose: () => {
      for (const t of timers) clearTimeout(t)
      for (const t of intervals) clearInterval(t)
      timers.clear()
      intervals.clear()
    },
  }
}

/**
 * Test-only check that the sandbox global offers none of {@link ABSENT_GLOBALS} (unless `allow`ed, e.g. names a test
 * put there through `extraGlobals`). Returns the `typeof` of each name as seen on the sandbox global.
 */
export function assertWeChatGlobals(sandbox: Pick<MiniProgramSandbox, 'context'>, allow: readonly string[] = []): Record<string, string> {
  const seen: Record<string, string> = {}
  const present: string[] = []
  for (const name of ABSENT_GLOBALS) {
    const type = vm.runInContext(`typeof ${name}`, sandbox.context) as string
    seen[name] = type
    if (type !== 'undefined' && !allow.includes(name)) present.push(`${name} (${type})`)
  }
  if (present.length) throw new Error(`the WeChat sandbox exposes globals a phone does not have: ${present.join(', ')}`)
  return seen
}
