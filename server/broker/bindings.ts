/**
 * Client id bindings: which rider a client id belongs to. An id used by one rider, or kept by it as a persistent
 * session, is refused to every other rider (else one rider could take over another's session, and hear its queued
 * messages). {@link createLocalBindings} is the table of one process; {@link ClusterBindings} is the same rule for
 * processes sharing a broker (see ./redis-bindings).
 */

/** Why an id cannot be bound: another rider holds it, or the rider has its allowed number of persistent sessions. */
export type BindRefusal = 'taken' | 'too-many-sessions'

/** The bindings of one process: synchronous, so a second rider racing for an id sees the first one's binding at once. */
export interface LocalBindings {
  /** Why `id` cannot be bound for `rider` (persistent: a `clean: false` connection), or undefined. Changes nothing. */
  check(id: string, rider: string, persistent: boolean, maxPersistent: number): BindRefusal | undefined
  /** Binds `id` to `rider` for one more connection (after {@link LocalBindings.check}). */
  bind(id: string, rider: string, persistent: boolean): void
  /** One connection of `rider` on `id` is gone: the binding goes with the last one, unless a persistent session keeps it. */
  release(id: string, rider: string): void
}

/** The same rule across processes: check and bind are one atomic step, as two processes may race for an id. */
export interface ClusterBindings {
  /** Binds `id` to `rider` for one more connection of this process, or says why not. */
  claim(id: string, rider: string, persistent: boolean, maxPersistent: number): Promise<BindRefusal | undefined>
  /** One connection of this process is gone (see {@link LocalBindings.release}). */
  release(id: string, rider: string): Promise<void>
}

/** The bindings of one process, kept in memory. A persistent session's binding stays for the life of the process. */
export function createLocalBindings(): LocalBindings {
  /** Client id → the rider it belongs to; kept while connected, and for as long as a persistent session may exist. */
  const bindings = new Map<string, { rider: string; connections: number; persistent: boolean }>()
  return {
    check(id, rider, persistent, maxPersistent) {
      const binding = bindings.get(id)
      if (binding && binding.rider !== rider) return 'taken'
      if (!binding && persistent) {
        let kept = 0
        for (const b of bindings.values()) if (b.rider === rider && b.persistent) kept++
        if (kept >= maxPersistent) return 'too-many-sessions'
      }
      return undefined
    },
    bind(id, rider, persistent) {
      const b = bindings.get(id) ?? { rider, connections: 0, persistent: false }
      b.connections++
      // A clean connection ends the id's persistent session (the broker discards it): it no longer counts.
      b.persistent = persistent
      bindings.set(id, b)
    },
    release(id, rider) {
      const b = bindings.get(id)
      if (b && b.rider === rider && --b.connections <= 0 && !b.persistent) bindings.delete(id)
    },
  }
}
