// readable-stream falls back to the `abort-controller` package, which takes the classes from self/window (undefined
// in WeChat, where the throw happened at load). The runtime's own classes when present, else a minimal ponyfill.
class AbortSignal {
  constructor() {
    this.aborted = false
    this.reason = undefined
    this.onabort = null
    this._listeners = []
  }
  addEventListener(type, listener) {
    if (type === 'abort') this._listeners.push(listener)
  }
  removeEventListener(type, listener) {
    this._listeners = this._listeners.filter((l) => l !== listener)
  }
  dispatchEvent(event) {
    for (const listener of this._listeners.slice()) listener.call(this, event)
    if (typeof this.onabort === 'function') this.onabort(event)
    return true
  }
  throwIfAborted() {
    if (this.aborted) throw this.reason
  }
}
class AbortController {
  constructor() {
    this.signal = new AbortSignal()
  }
  abort(reason) {
    if (this.signal.aborted) return
    this.signal.aborted = true
    this.signal.reason = reason === undefined ? new Error('This operation was aborted') : reason
    this.signal.dispatchEvent({ type: 'abort', target: this.signal })
  }
}
const g = typeof globalThis !== 'undefined' ? globalThis : {}
module.exports = g.AbortController || AbortController
module.exports.AbortController = g.AbortController || AbortController
module.exports.AbortSignal = g.AbortSignal || AbortSignal
module.exports.default = module.exports
