/**
 * LongLink MQTT entry: MQTT.js's MqttClient over the plugin's own sockets (uni / wx / WebSocket), with the core's
 * reconnect policy, lifecycle awareness, logger and error codes, per-topic handlers and promise APIs. It ships a
 * copy of MQTT.js made safe for the WeChat runtime (js_sdk/vendor), so the host needs no package and no config.
 * Import it from `js_sdk/mqtt`; `js_sdk/index` never loads MQTT.js.
 */
export { createMqttClient } from './mqtt/client'
export { checkFilter, checkTopic, topicMatches } from './mqtt/topic'
export type { MqttMessage } from './mqtt/message'
export type { MqttAuthResult, MqttClient, MqttClientEvents, MqttClientOptions, MqttPayload, PublishOptions, Subscription } from './mqtt/types'
export { ErrorCode, LongLinkError, isLongLinkError } from './errors'
export type { TransportChange, TransportName, TransportOptions } from './transports/options'
