// The only part of MQTT.js the plugin uses: the client, which takes a stream builder (ours) and needs no transport.
import MqttClient from 'mqtt/lib/client'
export default { MqttClient }
