/**
 * The backend as its own process, configured only by the environment (PORT, DATA_DIR, …), logging JSON lines to
 * stdout: what the restart tests SIGKILL and start again. SIGTERM closes it cleanly.
 */
import { startBackend } from '../../server/app'

startBackend().then(
  (backend) => {
    process.on('SIGTERM', () => {
      void backend.close().finally(() => process.exit(0))
    })
  },
  (err: unknown) => {
    process.stderr.write(`backend failed to start: ${(err as Error).stack ?? String(err)}\n`)
    process.exit(1)
  },
)
