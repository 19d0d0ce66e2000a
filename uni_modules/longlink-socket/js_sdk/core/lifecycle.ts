import type { LifecycleHost } from '../transport'

/** What a connection wants to hear from the host's network and app lifecycle. */
export interface LifecycleHandlers {
  network(online: boolean, type: string): void
  show(): void
  hide(): void
}

/**
 * Subscribes to whatever of `onNetworkStatusChange`, `onAppShow` and `onAppHide` the host has, asks
 * `getNetworkType` once, and returns the function that removes every listener it added.
 */
export function watchLifecycle(host: LifecycleHost | undefined, handlers: LifecycleHandlers): () => void {
  if (!host) return () => {}
  // Hosts without off* cannot drop a listener: the flag turns ours into no-ops after the watch ends.
  let active = true
  const onNetwork = (res: { isConnected?: boolean; networkType?: string } | undefined) => {
    if (!active || !res) return
    const type = String(res.networkType ?? (res.isConnected === false ? 'none' : 'unknown'))
    handlers.network(res.isConnected !== false && type !== 'none', type)
  }
  const onShow = () => active && handlers.show()
  const onHide = () => active && handlers.hide()
  const call = (fn: ((cb: never) => void) | undefined, cb: unknown) => {
    if (typeof fn !== 'function') return
    try {
      fn.call(host, cb as never)
    } catch {
      // A host may throw when the API exists but is not available here (for example in a plugin context).
    }
  }

  call(host.onNetworkStatusChange, onNetwork)
  call(host.onAppShow, onShow)
  call(host.onAppHide, onHide)
  if (typeof host.getNetworkType === 'function') {
    try {
      host.getNetworkType({ success: (res) => onNetwork({ networkType: res?.networkType }), fail: () => {} })
    } catch {
      // Same as above: the network type is a hint, never a reason to fail.
    }
  }

  return () => {
    active = false
    call(host.offNetworkStatusChange, onNetwork)
    call(host.offAppShow, onShow)
    call(host.offAppHide, onHide)
  }
}
