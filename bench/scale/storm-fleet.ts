/**
 * The riders of the storm benchmark, in their own process: N real clients of one kind, either the plugin's
 * `createMqttClient` (web adapter over `ws`, default options) or MQTT.js with its defaults, each subscribed to
 * `riders/<rider>/#`. After `arm`, it records when each client is back: open again with its subscription restored
 * (the plugin's `open` comes after the resubscription; for MQTT.js, its first SUBACK after the reconnect), and how many
 * connection attempts the clients made meanwhile.
 */
import mqtt, { type MqttClient as MqttJsClient } from 'mqtt'
import { WebSocket } from 'ws'
import { compileAndImport } from '../lib/compile'
import { serve, sourceAddress, wallNow } from './ipc'

type CoreEntry = typeof import('../../uni_modules/longlink-socket/js_sdk/index')
type MqttEntry = typeof import('../../uni_modules/longlink-socket/js_sdk/mqtt')

interface Member {
  end(): Promise<unknown>
}

const members: Member[] = []
let armedAt = 0
let back: number[] = []
let attempts = 0

/** The plugin as users run it: compiled and minified once, as a production build would. */
let entries: Promise<[CoreEntry, MqttEntry]> | undefined
const pluginEntries = (): Promise<[CoreEntry, MqttEntry]> =>
  (entries ??= Promise.all([
    compileAndImport<CoreEntry>('scale-core', 'uni_modules/longlink-socket/js_sdk/index.ts'),
    compileAndImport<MqttEntry>('scale-mqtt', 'uni_modules/longlink-socket/js_sdk/mqtt.ts'),
  ]))

async function plugin(url: string, rider: string, token: string, localAddress: string, index: number, reconnect?: object): Promise<Member> {
  const [core, entry] = await pluginEntries()
  // One WebSocket class per client: the web adapter constructs sockets with (url, protocols) only.
  class Socket extends WebSocket {
    constructor(address: string, protocols?: string | string[]) {
      super(address, protocols, { localAddress, perMessageDeflate: false })
    }
  }
  const client = entry.createMqttClient({
    url,
    platform: core.createWebAdapter(Socket as never),
    username: rider,
    password: token,
    clientId: rider,
    ...(reconnect && { reconnect }),
  })
  client.on('reconnecting', () => armedAt && attempts++)
  client.on('open', (e) => {
    if (armedAt && e.reconnected && !back[index]) back[index] = wallNow()
  })
  await client.connect()
  await client.subscribe(`riders/${rider}/#`, () => {}, { qos: 0 })
  return { end: () => client.end(true) }
}

async function mqttJs(url: string, rider: string, token: string, localAddress: string, index: number): Promise<Member> {
  const client: MqttJsClient = await mqtt.connectAsync(url, { username: rider, password: token, clientId: rider, wsOptions: { localAddress } })
  client.on('reconnect', () => armedAt && attempts++)
  client.on('packetreceive', (packet) => {
    if (armedAt && packet.cmd === 'suback' && !back[index]) back[index] = wallNow()
  })
  await client.subscribeAsync(`riders/${rider}/#`, { qos: 0 })
  return { end: () => client.endAsync(true) }
}

serve({
  /** Connects and subscribes every rider (`window` at a time); rejects if any fails. */
  async connect(args) {
    const { kind, url, names, tokens } = args as { kind: 'plugin' | 'mqttjs'; url: string; names: string[]; tokens: string[] }
    const perAddress = Number(args.perAddress ?? 800)
    // A reconnect policy other than the default, to compare policies (`SCALE_PLUGIN_RECONNECT` in bench/scale.ts).
    const reconnect = args.reconnect as object | undefined
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < names.length) {
        const i = next++
        members[i] = await (kind === 'plugin'
          ? plugin(url, names[i], tokens[i], sourceAddress(i, perAddress), i, reconnect)
          : mqttJs(url, names[i], tokens[i], sourceAddress(i, perAddress), i))
      }
    }
    await Promise.all(Array.from({ length: Number(args.window ?? 100) }, worker))
    return members.length
  },
  /** From now on, records when each client is back. */
  arm() {
    armedAt = wallNow()
    back = new Array<number>(members.length)
    attempts = 0
    return armedAt
  },
  backTimes: () => ({ back: Array.from(back, (t) => t ?? null), attempts }),
  async close() {
    await Promise.all(members.map((m) => m.end().catch(() => {})))
    members.length = 0
    return true
  },
})
