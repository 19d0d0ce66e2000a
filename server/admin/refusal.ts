/**
 * The one place a refused admin request is recorded, so the refusals chart and the security log never disagree.
 */
import type { Logger } from '../log'
import type { Metrics } from '../metrics'

/**
 * Records a refusal: always counted (the refusals chart); logged as a warning under `event` when one is given.
 * `fields` must never hold a secret.
 */
export type Refuse = (event: string | undefined, fields: Record<string, unknown>) => void

/** Creates the {@link Refuse} function over the admin's counters and logger. */
export function createRefusal(metrics: Metrics, logger: Logger): Refuse {
  return (event, fields) => {
    metrics.countRefusal()
    if (event) logger.warn(event, fields)
  }
}
