/**
 * The composables close what they opened when their scope is disposed (what a page unload does to its
 * components), on real sockets.
 */
import { effectScope } from 'vue'
import { afterEach, describe, expect, it } from 'vitest'
import { useConnection } from '../../uni_modules/longlink-socket/js_sdk/vue'
import { useMqtt, useTopic } from '../../uni_modules/longlink-socket/js_sdk/vue-mqtt'
import { useEventSource } from '../../uni_modules/longlink-socket/js_sdk/vue-sse'
import http from 'node:http'
import { createRequestSimulator } from '../support/request-sim'
import { startAedes } from '../support/brokers'
import { createWxSimulator } from '../support/socket-task-sim'
import { startTestServer } from '../support/test-server'
import { until } from '../support/wait'

const sims: ReturnType<typeof createWxSimulator>[] = []
afterEach(() => sims.splice(0).forEach((sim) => sim.dispose()))

describe('Vue composables', () => {
  it('useConnection opens, reflects state and messages, and closes with its scope', async () => {
    const server = await startTestServer()
    const sim = createWxSimulator()
    sims.push(sim)
    const scope = effectScope()
    const used = scope.run(() => useConnection({ url: server.url('/ws'), platform: sim as never }))!
    try {
      await until(() => used.state.value === 'open', 3000, 'open')
      await used.send('hello')
      await until(() => used.lastMessage.value === 'hello', 3000, 'the echo')
      scope.stop()
      await until(() => used.state.value === 'closed', 3000, 'closed on dispose')
      expect(sim.openTasks()).toBe(0)
      expect(sim.listenerCount()).toEqual({ network: 0, appShow: 0, appHide: 0 })
    } finally {
      await server.close()
    }
  })

  it('useMqtt and useTopic subscribe for their scope and leave with it', async () => {
    const broker = await startAedes()
    const sim = createWxSimulator()
    sims.push(sim)
    const scope = effectScope()
    const seen: string[] = []
    const { client, state, topic } = scope.run(() => {
      const mqtt = useMqtt({ url: broker.url, platform: sim as never })
      const topic = useTopic(mqtt.client, 'bikes/+/state', (m) => seen.push(m.text()), { qos: 1 })
      return { ...mqtt, topic }
    })!
    try {
      await until(() => state.value === 'open' && topic.subscription.value, 3000, 'subscribed')
      await broker.publish('bikes/B1/state', 'unlocked', { qos: 1 })
      await until(() => topic.message.value?.text() === 'unlocked', 3000, 'the message')
      expect(seen).toEqual(['unlocked'])
      scope.stop()
      await until(() => client.state === 'closed', 3000, 'ended on dispose')
      expect(sim.openTasks()).toBe(0)
      expect(broker.clients()).toBe(0)
    } finally {
      await broker.close()
    }
  })

  it('useEventSource streams for its scope and closes with it', async () => {
    const open = new Set<http.ServerResponse>()
    const server = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write(`id: 1\nevent: tick\ndata: 一\n\nid: 2\ndata: two\n\n`)
      open.add(res)
      req.on('close', () => open.delete(res))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const sim = createRequestSimulator()
    const scope = effectScope()
    try {
      const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/events`
      const used = scope.run(() => useEventSource(url, { platform: sim.wx as never }, { types: ['tick'] }))!
      await until(() => used.state.value === 'open', 3000, 'open')
      await until(() => used.lastEvent.value?.data === '一', 3000, 'the tick event')
      // Only the types asked for: the later `message` event does not replace it.
      expect(used.lastEvent.value).toEqual({ type: 'tick', data: '一', lastEventId: '1', id: '1' })
      await until(() => used.source.lastEventId === '2', 3000, 'the message event')
      expect(used.lastEvent.value?.type).toBe('tick')
      scope.stop()
      await until(() => used.state.value === 'closed', 3000, 'closed on dispose')
      await until(() => open.size === 0, 3000, 'the server to see the request go')
      expect(sim.active()).toBe(0)
    } finally {
      scope.stop()
      sim.close()
      for (const res of open) res.destroy()
      await new Promise((resolve) => server.close(resolve))
    }
  })
})
