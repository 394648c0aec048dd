/**
 * A `serve` process for tests (test/support/serve-process.ts) and a small client for its WebSocket API:
 * the hardening, fuzz and load tests attack a real server in its own process and then check it still answers.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { WebSocket } from 'ws'

const root = join(import.meta.dirname, '../..')

export interface ServedProcess {
  child: ChildProcess
  port: number
  token: string
  /** Everything the process wrote to stderr so far. */
  stderr(): string
  /** Whether the process is still running. */
  alive(): boolean
  stop(): Promise<number | null>
}

export async function startServedProcess(home: string, env: NodeJS.ProcessEnv = {}): Promise<ServedProcess> {
  const ui = join(home, 'ui')
  mkdirSync(ui, { recursive: true })
  writeFileSync(join(ui, 'index.html'), '<!doctype html><title>ui</title>')
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/serve-process.ts'], {
    cwd: root,
    env: { ...process.env, R2B_HOME: home, R2B_TEST_UI: ui, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr?.on('data', (d) => (stderr += String(d)))
  let exited = false
  const exit = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      exited = true
      resolve(code)
    }),
  )
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve)
    void exit.then((code) => reject(new Error(`serve-process exited (${code}) before listening:\n${stderr}`)))
  })
  const { port, token } = JSON.parse(first) as { port: number; token: string }
  return {
    child,
    port,
    token,
    stderr: () => stderr,
    alive: () => !exited,
    stop: async () => {
      if (!exited) child.kill('SIGTERM')
      return exit
    },
  }
}

/** A connected API client: `call(method, ...args)` resolves with the result or rejects with the error. */
export interface ApiClient {
  ws: WebSocket
  call(method: string, ...args: unknown[]): Promise<unknown>
  events: unknown[]
  close(): void
}

export function connect(served: { port: number; token: string }): Promise<ApiClient> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${served.port}/api?token=${served.token}`)
    const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
    const events: unknown[] = []
    let next = 1
    ws.on('message', (data) => {
      const message = JSON.parse(String(data)) as {
        id?: number
        result?: unknown
        error?: string
        event?: unknown
      }
      if (message.event !== undefined) events.push(message.event)
      else if (message.id !== undefined) {
        const waiter = pending.get(message.id)
        pending.delete(message.id)
        if (message.error !== undefined) waiter?.reject(new Error(message.error))
        else waiter?.resolve(message.result)
      }
    })
    ws.on('close', () => {
      for (const waiter of pending.values()) waiter.reject(new Error('connection closed'))
      pending.clear()
    })
    ws.once('error', reject)
    ws.once('open', () =>
      resolve({
        ws,
        events,
        call: (method, ...args) =>
          new Promise((res, rej) => {
            const id = next++
            pending.set(id, { resolve: res, reject: rej })
            ws.send(JSON.stringify({ id, method, args }))
          }),
        close: () => ws.close(),
      }),
    )
  })
}

/** A second process that takes and releases the training lock on request (test/support/lock-holder.ts). */
export interface LockHolder {
  pid: number
  acquire(what: string): Promise<void>
  release(): Promise<void>
  stop(): Promise<void>
}

export async function startLockHolder(home: string): Promise<LockHolder> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/lock-holder.ts'], {
    cwd: root,
    env: { ...process.env, R2B_HOME: home },
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  const lines = createInterface({ input: child.stdout! })
  const next = () => new Promise<string>((resolve) => lines.once('line', resolve))
  if ((await next()) !== 'ready') throw new Error('lock-holder did not start')
  const ask = async (command: string, expected: string) => {
    const answer = next()
    child.stdin!.write(`${command}\n`)
    const got = await answer
    if (got !== expected) throw new Error(`lock-holder answered "${got}" to "${command}"`)
  }
  return {
    pid: child.pid!,
    acquire: (what) => ask(`acquire ${what}`, 'held'),
    release: () => ask('release', 'released'),
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve())
        child.kill('SIGTERM')
      }),
  }
}
