import { homedir, platform } from 'node:os'
import { join } from 'node:path'

let appDataHome: string | null = null

/** Electron's main process calls this with `app.getPath('userData')`; headless hosts leave it unset. */
export function setAppDataHome(dir: string): void {
  appDataHome = dir
}

/**
 * The directory that holds datasets and runs: `R2B_HOME`, else the app's userData (Electron), else the
 * platform's data dir (`$XDG_DATA_HOME` or ~/.local/share on Linux, Application Support on macOS, %APPDATA%).
 */
export function dataHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.R2B_HOME) return env.R2B_HOME
  if (appDataHome) return appDataHome
  const name = 'r2b-workbench'
  switch (platform()) {
    case 'darwin':
      return join(homedir(), 'Library', 'Application Support', name)
    case 'win32':
      return join(env.APPDATA ?? join(homedir(), 'AppData', 'Roaming'), name)
    default:
      return join(env.XDG_DATA_HOME ?? join(homedir(), '.local', 'share'), name)
  }
}
