// mqtt-packet takes nextTick from this package, which (seeing no Node version) wraps `process.nextTick` per argument
// count: the bundle's own nextTick (process.js) does the same directly.
import process from './process.js'
export const nextTick = process.nextTick
