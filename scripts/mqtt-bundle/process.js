// The part of Node's `process` the bundled modules use. nextTick runs as a microtask, as Node runs it before I/O:
// the `process` package's setTimeout-based nextTick delays every MQTT packet write by a timer tick (≥ 1 ms).
const resolved = Promise.resolve()
module.exports = {
  nextTick(fn, ...args) {
    resolved.then(() => fn(...args))
  },
  env: {},
  versions: {},
  version: '',
  browser: true,
  platform: 'browser',
  argv: [],
  emitWarning() {},
  cwd: () => '/',
}
