/** The package ships no types: only what {@link ./cluster} uses. */
declare module 'aedes-persistence-redis' {
  import type { Redis } from 'ioredis'

  interface RedisPersistenceOptions {
    /** A connection made by the caller (else one is made from the other options). */
    conn?: Redis
    /** Offline messages delivered to a client at most when it reconnects (default 1000). */
    maxSessionDelivery?: number
    /** Seconds an offline message is kept (0: for ever). */
    packetTTL?: (packet: unknown) => number
  }

  /** aedes' persistence in Redis; `setup` and `destroy` return promises when called without a callback. */
  interface RedisPersistence {
    setup(broker: unknown): Promise<void>
    destroy(): Promise<void>
  }

  function aedesPersistenceRedis(options?: RedisPersistenceOptions): RedisPersistence
  export = aedesPersistenceRedis
}
