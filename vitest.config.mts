import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // Installs the Debian packages the broker and browser tests need when they are missing (see the file).
    globalSetup: ['tests/setup/system-packages.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Suites open real sockets and brokers on loopback; two cores do best with files one at a time.
    fileParallelism: false,
    reporters: ['default'],
  },
})
