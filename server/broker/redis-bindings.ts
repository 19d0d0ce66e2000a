/**
 * {@link ClusterBindings} in Redis, for processes sharing one broker. Per client id one hash
 * (`longlink:client:<id>`): `rider`, `persistent` (`1` once a `clean: false` connection used it) and `n:<node>`,
 * the connections each process has on it; per rider one set of its persistent session ids
 * (`longlink:sessions:<rider>`). Lua scripts make check-and-bind atomic, so two processes racing for an id cannot both
 * win.
 *
 * A process that dies leaves its `n:<node>` counts behind. A persistent session's binding stays anyway (the session
 * lives on in the shared broker state), which is right, until the rider connects to it with a clean session (which
 * ends it) or has not claimed it for `sessionTtlMs`. A binding of clean sessions only would stay too: the rider
 * may still reuse its own id at once (the same rider is never refused), another rider may not, and the key expires
 * `ttlMs` after its last claim. A connection lasts at most as long as its token, so `ttlMs` above the token lifetime
 * never drops the binding of a live connection.
 *
 * Connections per rider are not counted here: that bound stays per process.
 */
import type { Redis } from 'ioredis'
import type { BindRefusal, ClusterBindings } from './bindings'

const PREFIX = 'longlink:'

// KEYS: the id's hash, the rider's session set. ARGV: id, rider, node, persistent ('1'/'0'), max sessions, ttl (ms),
// session ttl (ms), key prefix. A clean connection ends the id's persistent session (the broker discards it), so it
// leaves the rider's session set; ids whose binding expired or stopped being persistent are pruned from that set
// before it is counted, so the bound is on sessions that exist, not on every id a rider ever used.
const CLAIM = `
local owner = redis.call('HGET', KEYS[1], 'rider')
if owner and owner ~= ARGV[2] then return 'taken' end
if ARGV[4] == '1' then
  if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 0 then
    for _, other in ipairs(redis.call('SMEMBERS', KEYS[2])) do
      if redis.call('HGET', ARGV[8] .. 'client:' .. other, 'persistent') ~= '1' then redis.call('SREM', KEYS[2], other) end
    end
    if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[5]) then return 'too-many-sessions' end
    redis.call('SADD', KEYS[2], ARGV[1])
  end
  redis.call('HSET', KEYS[1], 'persistent', '1')
  redis.call('PEXPIRE', KEYS[2], ARGV[7])
elseif redis.call('HGET', KEYS[1], 'persistent') == '1' then
  redis.call('HDEL', KEYS[1], 'persistent')
  redis.call('SREM', KEYS[2], ARGV[1])
end
redis.call('HSET', KEYS[1], 'rider', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'n:' .. ARGV[3], 1)
if redis.call('HGET', KEYS[1], 'persistent') == '1' then
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
end
return 'ok'
`

// KEYS: the id's hash. ARGV: rider, node. Deletes the binding when no process has a connection on it and no
// persistent session keeps it.
const RELEASE = `
if redis.call('HGET', KEYS[1], 'rider') ~= ARGV[1] then return 0 end
local field = 'n:' .. ARGV[2]
if redis.call('HINCRBY', KEYS[1], field, -1) <= 0 then redis.call('HDEL', KEYS[1], field) end
if redis.call('HGET', KEYS[1], 'persistent') == '1' then return 1 end
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(f, 1, 2) == 'n:' then return 1 end
end
redis.call('DEL', KEYS[1])
return 1
`

interface Scripts {
  longlinkClaim(idKey: string, sessionsKey: string, ...args: string[]): Promise<string>
  longlinkRelease(idKey: string, ...args: string[]): Promise<number>
}

/**
 * Bindings in Redis through `redis` (a command connection; give it `enableOfflineQueue: false` so a call fails at
 * once while Redis is away instead of holding a CONNECT). `node` names this process; `ttlMs` is how long a binding
 * of clean sessions outlives its last claim, `sessionTtlMs` one of a persistent session (a rider gone that long, the
 * refresh token's life, no longer holds the id nor counts it against its bound).
 */
export function createRedisBindings(redis: Redis, node: string, ttlMs: number, sessionTtlMs: number): ClusterBindings {
  redis.defineCommand('longlinkClaim', { numberOfKeys: 2, lua: CLAIM })
  redis.defineCommand('longlinkRelease', { numberOfKeys: 1, lua: RELEASE })
  const scripts = redis as unknown as Scripts
  const idKey = (id: string): string => `${PREFIX}client:${id}`
  return {
    async claim(id, rider, persistent, maxPersistent) {
      const answer = await scripts.longlinkClaim(
        idKey(id),
        `${PREFIX}sessions:${rider}`,
        id,
        rider,
        node,
        persistent ? '1' : '0',
        String(maxPersistent),
        String(Math.max(1, Math.round(ttlMs))),
        String(Math.max(1, Math.round(sessionTtlMs))),
        PREFIX,
      )
      return answer === 'ok' ? undefined : (answer as BindRefusal)
    },
    async release(id, rider) {
      await scripts.longlinkRelease(idKey(id), rider, node)
    },
  }
}
