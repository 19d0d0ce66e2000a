/**
 * The admin's limit on failed logins (and failed bearer checks of `/admin/stats`) per remote address, so the admin
 * password cannot be guessed at network speed. The counting is ../failure-limiter.ts.
 */
export { createFailureLimiter as createLoginLimiter, type FailureLimiter as LoginLimiter } from '../failure-limiter'

/** Failed logins (or bearer checks) per remote address per window before 429. */
export const ADMIN_LOGIN_FAILURES = 5
/** Length of the fixed window in which {@link ADMIN_LOGIN_FAILURES} are counted. */
export const ADMIN_LOGIN_WINDOW_MS = 60_000
