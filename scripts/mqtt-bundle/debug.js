// MQTT.js logs through `debug`, which probes window/document/localStorage: a silent stand-in (the plugin has its own logger).
function debug() {
  const log = () => {}
  log.enabled = false
  log.extend = () => log
  return log
}
debug.enable = () => {}
debug.disable = () => {}
debug.enabled = () => false
module.exports = debug
