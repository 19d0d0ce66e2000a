/**
 * The simulated smart lock: after an unlock is asked for, the lock "opens" at a given time. Kept apart from the bike
 * service so a real lock gateway could take its place. Times come from the store, so after a restart the service
 * schedules the unlocks that were in flight again, and a lock that should already be open opens at once.
 */
export interface LockSimulator {
  /** Calls `opened` at `at` (ms since epoch), or at once when that time has passed. */
  schedule(bike: string, at: number, opened: () => void): void
  /** Forgets every pending opening (shutdown). */
  cancelAll(): void
  pending(): number
}

export function createLockSimulator(now: () => number = Date.now): LockSimulator {
  const timers = new Map<string, NodeJS.Timeout>()
  return {
    schedule(bike, at, opened) {
      clearTimeout(timers.get(bike))
      const timer = setTimeout(
        () => {
          timers.delete(bike)
          opened()
        },
        Math.max(0, at - now()),
      )
      timers.set(bike, timer)
    },
    cancelAll() {
      for (const t of timers.values()) clearTimeout(t)
      timers.clear()
    },
    pending: () => timers.size,
  }
}
