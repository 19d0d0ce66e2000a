/**
 * Vue 3 composable for the SSE entry. The source it creates is closed when its owner goes away (a page unloading
 * unmounts its components, which disposes their scope), so a page cannot leak a request. Pages that do not use it
 * never load the SSE entry.
 */
import { onScopeDispose, shallowRef, type ShallowRef } from 'vue'
import { createEventSource } from './sse'
import type { LongLinkError } from './errors'
import type { ConnectionState } from './types'
import type { EventSource, EventSourceOptions, SseEvent } from './sse/types'

/** What `useEventSource` returns: the source and reactive views of it. */
export interface UseEventSource {
  source: EventSource
  /** The source's state, reactive. */
  state: ShallowRef<ConnectionState>
  /** The last event of the watched types. */
  lastEvent: ShallowRef<SseEvent | undefined>
  /** The last error reported (cleared when a stream opens). */
  error: ShallowRef<LongLinkError | undefined>
}

/**
 * Creates an event source owned by the current component or effect scope; `lastEvent` follows the events of `types`
 * (default `['message']`). The source closes when the scope is disposed: the component unmounts or the page unloads.
 */
export function useEventSource(url: string, options?: EventSourceOptions, { types = ['message'] }: { types?: string[] } = {}): UseEventSource {
  const source = createEventSource(url, options)
  const state = shallowRef(source.state)
  const lastEvent = shallowRef<SseEvent>()
  const error = shallowRef<LongLinkError>()
  source.on('state', (change) => (state.value = change.to))
  source.on('error', (e) => (error.value = e))
  source.on('open', () => (error.value = undefined))
  for (const type of types) source.on(type, (event: SseEvent) => (lastEvent.value = event))
  onScopeDispose(() => {
    source.close().catch(() => {})
  })
  return { source, state, lastEvent, error }
}
