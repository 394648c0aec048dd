import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it, onTestFinished } from 'vitest'

const root = join(import.meta.dirname, '../..')

describe('electron-vite build', () => {
  it('produces the main, preload, worker and renderer bundles', async () => {
    // A private output folder: other tests serve the UI from out/ meanwhile.
    const outDir = mkdtempSync(join(tmpdir(), 'r2b-build-'))
    onTestFinished(() => rmSync(outDir, { recursive: true, force: true }))
    await promisify(execFile)(
      process.execPath,
      [join(root, 'node_modules/electron-vite/bin/electron-vite.js'), 'build', '--outDir', outDir],
      { cwd: root, timeout: 300_000 },
    )
    const main = readFileSync(join(outDir, 'main/index.js'), 'utf8')
    // The worker entry is bundled separately and started by path as a utilityProcess.
    const workerFile = /join\$?\d*\(import\.meta\.dirname, "\.\/([^"]+)"\)/.exec(main)?.[1]
    expect(workerFile).toBeDefined()
    const worker = readFileSync(join(outDir, 'main', workerFile!), 'utf8')
    expect(worker).toMatch(/initBackend/)
    expect(main).toMatch(/utilityProcess\.fork/)
    // A sandboxed preload must be one CommonJS file that requires only electron.
    const preload = readFileSync(join(outDir, 'preload/index.cjs'), 'utf8')
    expect([...preload.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1])).toEqual(['electron'])
    expect(existsSync(join(outDir, 'renderer/index.html'))).toBe(true)
    expect(readdirSync(join(outDir, 'renderer/assets')).some((f) => f.endsWith('.js'))).toBe(true)
  })
})
