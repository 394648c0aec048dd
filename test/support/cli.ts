/**
 * The command line as a user runs it (`npm run r2b -- …`): a child process on a data home of the test's own,
 * on the wasm backend, its output collected as it comes.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'

const root = join(import.meta.dirname, '../..')

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

export interface CliRun {
  child: ChildProcess
  /** When the process has ended, with all it printed. */
  done: Promise<CliResult>
  /** What it has printed so far. */
  stdout(): string
}

export function runCli(home: string, args: string[], env: NodeJS.ProcessEnv = {}): CliRun {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main/cli/index.ts', ...args], {
    cwd: root,
    env: { ...process.env, R2B_HOME: home, R2B_BACKEND: 'wasm', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += String(d)))
  child.stderr.on('data', (d) => (stderr += String(d)))
  const done = new Promise<CliResult>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr })),
  )
  return { child, done, stdout: () => stdout }
}
