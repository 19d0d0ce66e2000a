/**
 * What `npm test` does about the Debian packages it needs (tests/setup/system-packages.ts): nothing when they are
 * there, one line and the install script when this process may install, and the exact command otherwise. The
 * packages here are made up (files in a temp folder), and the install is a function that creates them.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { ensureSystemPackages, type Requirement } from '../setup/system-packages'

describe('test set-up: system packages', () => {
  let dir: string
  let wanted: Requirement[]
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'longlink-pkgs-'))
    wanted = [
      { pkg: 'fake-broker', neededBy: 'the broker tests', files: [join(dir, 'broker')] },
      { pkg: 'fake-browser', neededBy: 'the browser tests', files: [join(dir, 'browser')] },
    ]
  })
  afterEach(() => {
    vi.restoreAllMocks()
    rmSync(dir, { recursive: true, force: true })
  })

  it('does nothing, and prints nothing, when everything is there', () => {
    for (const r of wanted) writeFileSync(r.files[0], '')
    const log = vi.spyOn(console, 'log').mockImplementation(() => {})
    const run = vi.fn()
    ensureSystemPackages(wanted, () => ['bash', 'install'], run)
    expect(run).not.toHaveBeenCalled()
    expect(log).not.toHaveBeenCalled()
  })

  it('installs what is missing when it may, saying so in one line', () => {
    writeFileSync(wanted[0].files[0], '')
    const log = vi.spyOn(console, 'log').mockImplementation(() => {})
    const run = vi.fn(() => writeFileSync(wanted[1].files[0], ''))
    ensureSystemPackages(wanted, () => ['sudo', '-n', 'bash', '.ci/install-system.sh'], run)
    expect(run).toHaveBeenCalledWith(['sudo', '-n', 'bash', '.ci/install-system.sh'])
    expect(log).toHaveBeenCalledTimes(1)
    expect(log.mock.calls[0][0]).toMatch(/installing fake-browser \(needed by the browser tests\)/)
  })

  it('stops with the exact command when it may not install', () => {
    // With apt-get (Debian), the command that installs them; elsewhere, the packages to find.
    expect(() => ensureSystemPackages(wanted, () => undefined, vi.fn())).toThrow(
      /missing fake-broker.*fake-browser.*(Install them once with: (sudo bash|su -c 'bash) \.ci\/install-system\.sh|package manager)/,
    )
  })

  it('stops when the install ran and something is still missing', () => {
    vi.spyOn(console, 'log').mockImplementation(() => {})
    expect(() => ensureSystemPackages(wanted, () => ['bash', 'install'], vi.fn())).toThrow(/still missing/)
  })
})
