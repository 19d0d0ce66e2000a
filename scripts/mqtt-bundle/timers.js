// MQTT.js runs its timers in a Web Worker in browsers; mini-programs have none, so plain timers.
export const setTimeout = (fn, ms) => globalThis.setTimeout(fn, ms)
export const clearTimeout = (id) => globalThis.clearTimeout(id)
export const setInterval = (fn, ms) => globalThis.setInterval(fn, ms)
export const clearInterval = (id) => globalThis.clearInterval(id)
