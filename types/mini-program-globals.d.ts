/**
 * The few globals every runtime the plugin targets has (WeChat and other mini-programs, uni-app, browsers, Node),
 * with no DOM and no Node types. Only `tsconfig.plugin.json` includes this file: kept outside
 * the plugin so a host that compiles js_sdk with its own DOM or Node types never sees a second declaration.
 *
 * Timer ids are opaque here (a number in mini-programs and browsers, an object in Node): plugin code may only store
 * them as `ReturnType<typeof setTimeout>` and hand them back to `clearTimeout`.
 */
declare const timerIdBrand: unique symbol
interface TimerId {
  readonly [timerIdBrand]: true
}

declare function setTimeout(callback: () => void, ms?: number): TimerId
declare function clearTimeout(id: TimerId | undefined): void
declare function setInterval(callback: () => void, ms?: number): TimerId
declare function clearInterval(id: TimerId | undefined): void

interface Console {
  debug(...data: unknown[]): void
  info(...data: unknown[]): void
  log(...data: unknown[]): void
  warn(...data: unknown[]): void
  error(...data: unknown[]): void
}
declare const console: Console
