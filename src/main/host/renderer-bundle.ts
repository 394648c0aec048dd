import { execFile } from 'node:child_process'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { ProcessLock } from '../process-lock'

const projectRoot = fileURLToPath(new URL('../../..', import.meta.url))

/** What the UI bundle is built from: a change to any of these makes the built UI out of date. */
const UI_SOURCES = ['src/renderer', 'src/shared', 'electron.vite.config.ts', 'package-lock.json']

/** Where the built UI is: `R2B_RENDERER_DIR`, else electron-vite's output in the project. */
export function rendererDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.R2B_RENDERER_DIR ?? fileURLToPath(new URL('../../../out/renderer', import.meta.url))
}

async function newestChange(path: string): Promise<number> {
  const info = await stat(path).catch(() => null)
  if (!info) return 0
  if (!info.isDirectory()) return info.mtimeMs
  const entries = await readdir(path)
  const times = await Promise.all(entries.map((entry) => newestChange(join(path, entry))))
  return Math.max(info.mtimeMs, ...times)
}

/** Whether `built` is missing or older than any file under `sources`. */
export async function isOutOfDate(built: string, sources: string[]): Promise<boolean> {
  const builtAt = await stat(built).then(
    (info) => info.mtimeMs,
    () => null,
  )
  if (builtAt === null) return true
  const changes = await Promise.all(sources.map(newestChange))
  return Math.max(0, ...changes) > builtAt
}

/**
 * Builds the UI when it is missing (a fresh clone) or older than its sources (after a pull or an edit), so
 * `serve` always shows the code in the checkout. A UI given by R2B_RENDERER_DIR is used as it is. One build at
 * a time per checkout: a process that finds another building waits for it, then checks again.
 */
export async function ensureRendererBuilt(log: (line: string) => void): Promise<string> {
  const dir = rendererDir()
  const index = join(dir, 'index.html')
  const sources = process.env.R2B_RENDERER_DIR ? [] : UI_SOURCES.map((source) => join(projectRoot, source))
  const lock = new ProcessLock(join(projectRoot, 'node_modules', '.cache', 'r2b-ui-build.lock'))
  let waiting = false
  while (await isOutOfDate(index, sources)) {
    const holder = await lock.acquire('UI build')
    if (holder) {
      if (!waiting) log(`another process (pid ${holder.pid}) is building the UI; waiting for it…`)
      waiting = true
      await sleep(250)
      continue
    }
    try {
      // Once built here, done: a source dated in the future would otherwise be out of date for ever.
      if (await isOutOfDate(index, sources)) {
        log('building the UI (electron-vite build)…')
        const cli = 'node_modules/electron-vite/bin/electron-vite.js'
        await promisify(execFile)(process.execPath, [cli, 'build'], { cwd: projectRoot })
      }
      return dir
    } finally {
      await lock.release()
    }
  }
  return dir
}
