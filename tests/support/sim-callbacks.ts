/** What the `wx`/`uni` simulators (socket tasks, requests) share: how WeChat calls back, and its type checks. */

/**
 * Calls a user callback as WeChat does: a throwing one is reported as a script error, never rethrown, so one faulty
 * listener cannot break the simulator's bookkeeping.
 */
export function safeCall<T>(label: string, fn: ((arg: T) => void) | undefined, arg: T): void {
  if (typeof fn !== 'function') return
  try {
    fn(arg)
  } catch (err) {
    console.error(`thirdScriptError at ${label}`, err)
  }
}

/** Whether an options object has one of success/fail/complete (uni then returns the task, not a Promise). */
export function hasCallback(options: unknown): boolean {
  if (options === null || typeof options !== 'object') return false
  const o = options as Record<string, unknown>
  return typeof o.success === 'function' || typeof o.fail === 'function' || typeof o.complete === 'function'
}

/** toString tag instead of instanceof: survives ArrayBuffers from another realm (the vm-based WeChat sandbox). */
export function isArrayBuffer(value: unknown): value is ArrayBuffer {
  return Object.prototype.toString.call(value) === '[object ArrayBuffer]'
}

/** WeChat-style type name used in parameter errors ("String", "Uint8Array", "Undefined", "Object"...). */
export function typeName(value: unknown): string {
  return Object.prototype.toString.call(value).slice(8, -1)
}
