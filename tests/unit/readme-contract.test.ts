/**
 * The plugin readme documents every error code, in both languages, and nothing else: its two error tables must list
 * exactly the codes of the `ErrorCode` union.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ErrorCode } from '../../uni_modules/longlink-socket/js_sdk/index'

const readme = readFileSync(join(__dirname, '../../uni_modules/longlink-socket/readme.md'), 'utf8')

/** The codes in the first column of the table under `heading`, in order. */
function tableCodes(heading: string): string[] {
  const start = readme.indexOf(`\n${heading}\n`)
  expect(start, `the readme has a "${heading}" section`).toBeGreaterThanOrEqual(0)
  const section = readme.slice(start + heading.length + 2)
  const end = section.search(/\n#{2,3} /)
  const body = end === -1 ? section : section.slice(0, end)
  return [...body.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1])
}

describe('plugin readme', () => {
  const codes = Object.keys(ErrorCode)

  it.each([
    ['中文', '### 错误码'],
    ['English', '### Error codes'],
  ])('documents every ErrorCode in the %s error table, each once, and no other', (_language, heading) => {
    const documented = tableCodes(heading)
    expect(documented.length).toBe(new Set(documented).size)
    expect([...documented].sort()).toEqual([...codes].sort())
  })

  it('keeps every code equal to its own name', () => {
    for (const code of codes) expect(ErrorCode[code as keyof typeof ErrorCode]).toBe(code)
  })
})
