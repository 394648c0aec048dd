import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const projectRoot = fileURLToPath(new URL('../../..', import.meta.url))

/** Where the built UI is: `R2B_RENDERER_DIR`, else electron-vite's output in the project. */
export function rendererDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.R2B_RENDERER_DIR ?? fileURLToPath(new URL('../../../out/renderer', import.meta.url))
}

/** Builds the UI when it has not been built yet (a fresh clone), so `serve` works as the first command. */
export async function ensureRendererBuilt(log: (line: string) => void): Promise<string> {
  const dir = rendererDir()
  if (existsSync(`${dir}/index.html`)) return dir
  log('building the UI (electron-vite build), once…')
  await promisify(execFile)(process.execPath, ['node_modules/electron-vite/bin/electron-vite.js', 'build'], {
    cwd: projectRoot,
  })
  return dir
}
