/**
 * toDuplex with a real in-process aedes broker: MQTT.js over the plain WebSocket path, raw MQTT packets over a
 * plain WebSocket (one PUBLISH per binary message), and a raw MQTT session over long-polling packets.
 */
import { Aedes } from 'aedes'
import mqtt, { type MqttClient } from 'mqtt'
import mqttPacket from 'mqtt-packet'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { toDuplex } from '../../server/longlink/index'
import { RawSession, RawWs } from '../support/longlink-raw'
import { until, within } from '../support/wait'
import { closeLlServers, llServer, type LlServer } from './longlink-helpers'

let aedes: Aedes
const clients: MqttClient[] = []

beforeEach(async () => {
  aedes = await Aedes.createBroker()
})

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true).catch(() => {})))
  await closeLlServers()
  await new Promise<void>((resolve) => aedes.close(() => resolve()))
})

function mqttServer(): Promise<LlServer> {
  return llServer({ hold: 2000, onConnection: (conn) => void aedes.handle(toDuplex(conn)) })
}

const connect = (clientId: string): mqttPacket.IConnectPacket => ({
  cmd: 'connect',
  protocolId: 'MQTT',
  protocolVersion: 4,
  clientId,
  clean: true,
  keepalive: 30,
})

/** Parses MQTT packets out of a stream of messages. */
function packetReader(): { packets: mqttPacket.Packet[]; parse(data: Buffer): number } {
  const packets: mqttPacket.Packet[] = []
  const parser = mqttPacket.parser({ protocolVersion: 4 })
  parser.on('packet', (p) => packets.push(p))
  return { packets, parse: (data) => parser.parse(data) }
}

describe('toDuplex', () => {
  it('pushes what the conn receives as bytes; writes of one turn leave as one binary message; end() closes the conn', async () => {
    const s = await llServer({
      onConnection(conn) {
        const duplex = toDuplex(conn)
        duplex.on('data', (chunk: Buffer) => {
          if (chunk.toString() === 'end') return void duplex.end()
          duplex.write(chunk)
          duplex.write('-b')
          duplex.write(Buffer.from('-c'))
          setImmediate(() => duplex.write('-later'))
        })
      },
    })
    const ws = new RawWs(s.wsBase)
    await ws.opened
    ws.send('text')
    expect(await ws.next()).toEqual({ data: Buffer.from('text-b-c'), binary: true })
    expect(await ws.next()).toEqual({ data: Buffer.from('-later'), binary: true })
    ws.send(Buffer.from([1, 2]))
    expect(await ws.next()).toEqual({ data: Buffer.from([1, 2, 0x2d, 0x62, 0x2d, 0x63]), binary: true })
    await ws.next()
    ws.send('end')
    expect(await ws.closed).toEqual({ code: 1000, reason: '' })
  })
})

describe('toDuplex with aedes', () => {
  it('MQTT.js connects, subscribes and publishes over the plain WebSocket path', async () => {
    const s = await mqttServer()
    const client = mqtt.connect(s.wsBase, { reconnectPeriod: 0, connectTimeout: 3000, clientId: 'js-1' })
    clients.push(client)
    client.on('error', () => {})
    await within(new Promise<void>((resolve) => client.once('connect', () => resolve())), 4000, 'CONNACK')
    await client.subscribeAsync('rides/+', { qos: 1 })
    const got = new Promise<[string, Buffer]>((resolve) => client.once('message', (topic, payload) => resolve([topic, payload])))
    const big = Buffer.alloc(50_000, 7)
    await client.publishAsync('rides/42', big, { qos: 1 })
    const [topic, payload] = await within(got, 4000, 'message')
    expect(topic).toBe('rides/42')
    expect(payload.equals(big)).toBe(true)
    expect(s.conns[0].transport).toBe('websocket')
    await client.endAsync()
    await until(() => s.closes.size === 1, 3000, 'conn close')
    await until(() => aedes.connectedClients === 0, 3000, 'aedes disconnect')
  })

  it('each MQTT packet the broker writes leaves as one binary message; garbage ends the connection', async () => {
    const s = await mqttServer()
    const ws = new RawWs(s.wsBase)
    await ws.opened
    ws.send(mqttPacket.generate(connect('raw-1')))
    const connack = await ws.next()
    expect(connack.binary).toBe(true)
    const reader = packetReader()
    expect(reader.parse(connack.data as Buffer)).toBe(0)
    expect(reader.packets).toMatchObject([{ cmd: 'connack', returnCode: 0 }])
    ws.send(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 't', qos: 0 }] }))
    const suback = packetReader()
    suback.parse((await ws.next()).data as Buffer)
    expect(suback.packets).toMatchObject([{ cmd: 'suback' }])
    ws.send(mqttPacket.generate({ cmd: 'publish', topic: 't', payload: Buffer.from('x'.repeat(300)), qos: 0, dup: false, retain: false }))
    // mqtt-packet writes a PUBLISH in pieces (header, topic, payload): one message nonetheless, holding one packet.
    const publish = packetReader()
    expect(publish.parse((await ws.next()).data as Buffer)).toBe(0)
    expect(publish.packets).toHaveLength(1)
    expect(publish.packets[0]).toMatchObject({ cmd: 'publish', topic: 't' })
    ws.send(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff]))
    await within(ws.closed, 4000, 'close after garbage')
  })

  it('a raw MQTT CONNECT / CONNACK and a publish round trip over long-polling packets', async () => {
    const s = await mqttServer()
    const session = await RawSession.open(s.base, 'long-polling')
    const reader = packetReader()
    let taken = 0
    const readPackets = async (count: number): Promise<void> => {
      const deadline = Date.now() + 5000
      while (reader.packets.length < count) {
        if (Date.now() > deadline) throw new Error(`only ${reader.packets.length} MQTT packets`)
        await session.poll()
        for (const m of session.received.slice(taken)) reader.parse(m as Buffer)
        taken = session.received.length
      }
    }
    expect((await session.post([mqttPacket.generate(connect('poll-1'))])).body).toEqual({ ack: 1 })
    await readPackets(1)
    expect(reader.packets[0]).toMatchObject({ cmd: 'connack', returnCode: 0 })
    expect(Buffer.isBuffer(session.received[0])).toBe(true)
    await session.post([
      mqttPacket.generate({ cmd: 'subscribe', messageId: 2, subscriptions: [{ topic: 'bikes/#', qos: 1 }] }),
      mqttPacket.generate({
        cmd: 'publish',
        topic: 'bikes/7',
        payload: Buffer.from('{"locked":true}'),
        qos: 1,
        messageId: 3,
        dup: false,
        retain: false,
      }),
    ])
    await readPackets(4)
    const cmds = reader.packets.map((p) => p.cmd)
    expect(cmds).toEqual(expect.arrayContaining(['connack', 'suback', 'puback', 'publish']))
    const publish = reader.packets.find((p) => p.cmd === 'publish') as mqttPacket.IPublishPacket
    expect(publish.topic).toBe('bikes/7')
    expect(String(publish.payload)).toBe('{"locked":true}')
    expect(aedes.connectedClients).toBe(1)
    // The client closes the session: the broker sees the disconnect.
    await session.post([{ close: [1000, ''] }])
    await until(() => aedes.connectedClients === 0, 3000, 'aedes disconnect')
  })
})
