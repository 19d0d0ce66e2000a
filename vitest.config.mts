import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Suites open real sockets and brokers on loopback; two cores do best with files one at a time.
    fileParallelism: false,
    reporters: ['default'],
  },
})
