/**
 * The broker's last check before a delivery (authorizeForward): a `riders/<rider>/…` message reaches that rider only,
 * decided from the topic; a rider whose id is a prefix of another's hears nothing of the other's.
 */
import type { AedesPublishPacket, Client } from 'aedes'
import type { WebSocket } from 'ws'
import { afterEach, describe, expect, it } from 'vitest'
import { createRiderPolicy } from '../../server/broker/policy'
import { DEFAULT_LIMITS } from '../../server/config'
import { createLogLimiter, memoryLogger } from '../../server/log'
import { createMetrics } from '../../server/metrics'
import { createTokenService } from '../../server/tokens'

const tokens = createTokenService('forward-test-secret')
const logger = memoryLogger()
const noisy = createLogLimiter(logger, 20, 60_000)
const policy = createRiderPolicy({
  tokens,
  logger,
  noisy,
  metrics: createMetrics(),
  limits: DEFAULT_LIMITS,
  bikes: { canWatch: async () => false, reannounce: () => {} },
  clientById: () => undefined,
  closing: () => false,
})
afterEach(() => noisy.close())

/** A connected rider as the policy sees it: attached, then logged in with its own token. */
async function rider(name: string): Promise<Client> {
  const ws = { readyState: 1, OPEN: 1, on: () => {} } as unknown as WebSocket
  const client = { id: `${name}-client`, close: () => {} } as unknown as Client
  policy.attach(client, ws, '127.0.0.1')
  policy.preConnect(client, { keepalive: 60, clean: true } as never, () => {})
  const ok = await new Promise((resolve) => policy.authenticate(client, name, Buffer.from(tokens.issue(name, 60_000).token), (_e, s) => resolve(s)))
  expect(ok).toBe(true)
  return client
}

const packet = (topic: string): AedesPublishPacket =>
  ({ cmd: 'publish', topic, payload: Buffer.from('{}'), qos: 0, retain: false, dup: false, messageId: 0 }) as unknown as AedesPublishPacket

describe('authorizeForward for riders/<rider>/…', () => {
  it("delivers a rider's own topics and nothing of a rider whose id starts with the same letters", async () => {
    const ann = await rider('ann')
    const anna = await rider('anna')
    const to = (client: Client, topic: string) => policy.authorizeForward(client, packet(topic)) !== null
    expect([to(ann, 'riders/ann'), to(ann, 'riders/ann/inbox'), to(ann, 'riders/ann/a/b')]).toEqual([true, true, true])
    expect([to(ann, 'riders/anna/inbox'), to(ann, 'riders/anna'), to(ann, 'riders/an/inbox'), to(ann, 'riders//inbox')]).toEqual([
      false,
      false,
      false,
      false,
    ])
    expect([to(anna, 'riders/anna/inbox'), to(anna, 'riders/ann/inbox')]).toEqual([true, false])
    policy.close()
  })
})
