import { mkdirSync, mkdtempSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { isOutOfDate } from '../../../../src/main/host/renderer-bundle'

/** A built file and a source tree, with the times given (seconds since the epoch). */
function tree(builtAt: number | null, sourceTimes: Record<string, number>) {
  const root = mkdtempSync(join(tmpdir(), 'r2b-ui-'))
  const built = join(root, 'out', 'index.html')
  if (builtAt !== null) {
    mkdirSync(join(root, 'out'))
    writeFileSync(built, '<html></html>')
    utimesSync(built, builtAt, builtAt)
  }
  for (const [path, at] of Object.entries(sourceTimes)) {
    const file = join(root, 'src', path)
    mkdirSync(join(file, '..'), { recursive: true })
    writeFileSync(file, 'x')
    utimesSync(file, at, at)
  }
  // Directories (whose times change when a file is added or removed) get the oldest time here.
  for (const path of Object.keys(sourceTimes)) {
    const parts = path.split('/').slice(0, -1)
    for (let i = parts.length; i > 0; i--) utimesSync(join(root, 'src', ...parts.slice(0, i)), 1, 1)
  }
  utimesSync(join(root, 'src'), 1, 1)
  return { built, sources: [join(root, 'src'), join(root, 'missing.json')] }
}

describe('the built UI is out of date', () => {
  it('when it has not been built', async () => {
    const { built, sources } = tree(null, { 'a.ts': 100 })
    expect(await isOutOfDate(built, sources)).toBe(true)
  })

  it('when a source file, however deep, changed after the build', async () => {
    const { built, sources } = tree(200, { 'a.ts': 100, 'views/deep/b.tsx': 300 })
    expect(await isOutOfDate(built, sources)).toBe(true)
  })

  it('when a file was removed from a source folder after the build', async () => {
    const { built, sources } = tree(200, { 'a.ts': 100 })
    utimesSync(sources[0]!, 300, 300)
    expect(await isOutOfDate(built, sources)).toBe(true)
  })

  it('not when every source is older than the build (a missing source counts as none)', async () => {
    const { built, sources } = tree(200, { 'a.ts': 100, 'views/deep/b.tsx': 150 })
    expect(await isOutOfDate(built, sources)).toBe(false)
  })
})
