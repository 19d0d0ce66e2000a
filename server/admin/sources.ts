/**
 * The admin's reads of the backend: the gauges sampled every second into the history, and the connected riders.
 *
 * Both come from callbacks that may fail; a failure is logged once per failure streak, never once a second.
 */
import type { Logger } from '../log'
import { createHistory, type History, type Metrics } from '../metrics'
import { LIVE_RIDERS_MAX, type ConnectedRider } from './protocol'

export interface SourcesDeps {
  logger: Logger
  metrics: Metrics
  /** Sampled every second for the history. */
  gauges(): { online: number | null; activeRides: number }
  /** The connected riders. */
  riders(): ConnectedRider[]
}

/** The riders as sent to viewers: at most {@link LIVE_RIDERS_MAX} rows, and how many there are in all. */
export interface RidersSnapshot {
  riders: ConnectedRider[]
  total: number
}

export interface Sources {
  /** The last hour, one point a second; already sampling. */
  history: History
  /** The connected riders now (none when the callback fails). */
  riders(): RidersSnapshot
}

/** Creates the sources and starts sampling the history. */
export function createSources(deps: SourcesDeps): Sources {
  const { logger, metrics } = deps

  let gaugeErrorLogged = false
  const history = createHistory({
    metrics,
    gauges: () => {
      const g = deps.gauges()
      gaugeErrorLogged = false
      return g
    },
    onGaugeError: (err) => {
      // Once per failure streak: a broken gauge must not write a line a second.
      if (!gaugeErrorLogged) logger.error('admin.gauges.failed', { error: err })
      gaugeErrorLogged = true
    },
  })
  // Sampling runs whether anyone watches or not: a viewer who opens the page sees the last hour.
  history.start()

  let ridersErrorLogged = false
  const riders = (): RidersSnapshot => {
    let all: ConnectedRider[]
    try {
      all = deps.riders()
      ridersErrorLogged = false
    } catch (err) {
      // Once per failure streak, like the gauges.
      if (!ridersErrorLogged) logger.error('admin.riders.failed', { error: err })
      ridersErrorLogged = true
      all = []
    }
    return { riders: all.length > LIVE_RIDERS_MAX ? all.slice(0, LIVE_RIDERS_MAX) : all, total: all.length }
  }

  return { history, riders }
}
