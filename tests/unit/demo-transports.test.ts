/**
 * The demo's choice of transports for its MQTT link (src/config.ts): a comma list, checked, from the H5 query, the
 * `longlink:transports` storage key or `VITE_LONGLINK_TRANSPORTS`, in that order, else websocket → sse → long-polling.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { DEFAULT_TRANSPORTS, demoTransports, parseTransports, TRANSPORTS_KEY } from '../../src/config'

afterEach(() => {
  vi.unstubAllGlobals()
  vi.unstubAllEnvs()
})

/** A `uni` whose storage holds `value` under the transports key. */
const storing = (value: unknown) => ({ getStorageSync: (key: string) => (key === TRANSPORTS_KEY ? value : '') })

describe('parseTransports', () => {
  it.each([
    ['long-polling', ['long-polling']],
    [' websocket, SSE ,long-polling ', ['websocket', 'sse', 'long-polling']],
    ['polling,polling', ['polling']],
  ])('%j → %j', (raw, list) => expect(parseTransports(raw)).toEqual(list))

  it.each([[''], ['  '], ['comet'], ['websocket,comet'], [undefined], [42], [',']])('%j → undefined (the next source decides)', (raw) =>
    expect(parseTransports(raw)).toBeUndefined(),
  )
})

describe('demoTransports', () => {
  it('defaults to websocket, sse, long-polling', () => {
    expect(demoTransports()).toEqual(['websocket', 'sse', 'long-polling'])
    expect(demoTransports()).not.toBe(DEFAULT_TRANSPORTS)
  })

  it('takes the build setting, and the storage key over it; a bad value is skipped', () => {
    vi.stubEnv('VITE_LONGLINK_TRANSPORTS', 'polling')
    expect(demoTransports()).toEqual(['polling'])
    vi.stubGlobal('uni', storing('sse,long-polling'))
    expect(demoTransports()).toEqual(['sse', 'long-polling'])
    vi.stubGlobal('uni', storing('nonsense'))
    expect(demoTransports()).toEqual(['polling'])
  })

  it('on H5, ?transports= in the address wins (in the search or in the hash route)', () => {
    vi.stubGlobal('uni', storing('sse'))
    vi.stubGlobal('location', { search: '?transports=long-polling', hash: '' })
    expect(demoTransports()).toEqual(['long-polling'])
    vi.stubGlobal('location', { search: '', hash: '#/pages/ride/ride?x=1&transports=websocket%2Cpolling' })
    expect(demoTransports()).toEqual(['websocket', 'polling'])
    vi.stubGlobal('location', { search: '?transports=%E0', hash: '' })
    expect(demoTransports()).toEqual(['sse'])
  })
})
