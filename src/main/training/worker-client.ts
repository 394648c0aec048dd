import { fork, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { WorkerEvent, type WorkerCommand } from '../../shared/worker-protocol'

/** The smallest surface main needs from a worker process, implemented by a Node child process and by
 * Electron's UtilityProcess alike. */
export interface WorkerTransport {
  postMessage(message: WorkerCommand): void
  onMessage(listener: (message: unknown) => void): void
  onExit(listener: (code: number | null, signal: string | null) => void): void
  kill(signal?: NodeJS.Signals): void
  readonly pid: number | undefined
}

/** Main's typed handle on a training worker: commands out, validated events in. */
export class WorkerClient {
  private readonly listeners = new Set<(event: WorkerEvent) => void>()
  private readonly exitListeners = new Set<(code: number | null, signal: string | null) => void>()
  private exited = false

  constructor(private readonly transport: WorkerTransport) {
    transport.onMessage((raw) => {
      const parsed = WorkerEvent.safeParse(raw)
      const event: WorkerEvent = parsed.success
        ? parsed.data
        : { type: 'failed', message: `worker sent an invalid event: ${parsed.error.message}` }
      for (const listener of this.listeners) listener(event)
    })
    transport.onExit((code, signal) => {
      this.exited = true
      for (const listener of this.exitListeners) listener(code, signal)
    })
  }

  get pid(): number | undefined {
    return this.transport.pid
  }

  send(command: WorkerCommand): void {
    if (this.exited) throw new Error('the training worker has exited')
    this.transport.postMessage(command)
  }

  on(listener: (event: WorkerEvent) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  onExit(listener: (code: number | null, signal: string | null) => void): () => void {
    this.exitListeners.add(listener)
    return () => this.exitListeners.delete(listener)
  }

  /** Resolves with the first event that matches, rejects on a `failed` event or if the worker exits first. */
  waitFor<T extends WorkerEvent['type']>(type: T): Promise<Extract<WorkerEvent, { type: T }>> {
    return this.waitForEvent(
      (event): event is Extract<WorkerEvent, { type: T }> => event.type === type,
      `"${type}"`,
    )
  }

  /**
   * Resolves with the first event `match` accepts. Rejects with the worker's words when it reports a
   * failure that is not a run's (a run's failure belongs to the trainer), and when it exits first: a waiter
   * never outlives the worker it waits on.
   */
  waitForEvent<E extends WorkerEvent>(
    match: (event: WorkerEvent) => event is E,
    what: string,
    fails: (event: WorkerEvent) => string | null = () => null,
  ): Promise<E> {
    return new Promise((resolve, reject) => {
      if (this.exited) return reject(new Error(`the training worker has exited: no ${what}`))
      const stop = () => {
        offEvent()
        offExit()
      }
      const offEvent = this.on((event) => {
        const failure = event.type === 'failed' && event.runId === undefined ? event.message : fails(event)
        if (match(event)) {
          stop()
          resolve(event)
        } else if (failure !== null) {
          stop()
          reject(new Error(failure))
        }
      })
      const offExit = this.onExit((code, signal) => {
        stop()
        reject(new Error(`the training worker exited (${signal ?? `code ${code}`}) before ${what}`))
      })
    })
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    this.transport.kill(signal)
  }

  /** Asks the worker to release its backend and exit; kills it if it has not exited after `graceMs`. */
  async shutdown(graceMs = 5000): Promise<void> {
    if (this.exited) return
    // Registered before the command: a worker that dies on its own still resolves this.
    const exited = new Promise<void>((resolve) => this.onExit(() => resolve()))
    this.send({ type: 'shutdown' })
    const timer = setTimeout(() => this.kill('SIGKILL'), graceMs)
    await exited
    clearTimeout(timer)
  }
}

/** The worker entry when running from source (CLI, tests): the TypeScript file, loaded through tsx. */
export const SOURCE_WORKER_ENTRY = fileURLToPath(new URL('../worker/index.ts', import.meta.url))

function childTransport(child: ChildProcess): WorkerTransport {
  return {
    // A worker that already died answers sends with EPIPE; its exit is reported through onExit instead.
    postMessage: (message) => {
      if (child.connected) child.send(message, (error) => error && undefined)
    },
    onMessage: (listener) => child.on('message', listener),
    onExit: (listener) => child.on('exit', listener),
    kill: (signal) => child.kill(signal),
    get pid() {
      return child.pid
    },
  }
}

// Dawn reports that it lowered two limits nobody here uses on every device it creates: noise, not news.
const DAWN_NOISE = /^Warning: maxDynamic\w+PerPipelineLayout artificially reduced/

/**
 * Starts the worker as a Node child process (the CLI's and the headless host's way; Electron uses a
 * utilityProcess over the same entry). Its stderr is passed through, less Dawn's start-up noise.
 */
export function launchWorkerProcess(
  options: { entry?: string; env?: NodeJS.ProcessEnv; quiet?: boolean } = {},
): WorkerClient {
  const entry = options.entry ?? SOURCE_WORKER_ENTRY
  const child = fork(entry, [], {
    execArgv: entry.endsWith('.ts') ? ['--import', 'tsx'] : [],
    env: options.env ?? process.env,
    // Typed arrays (attention maps, gate values) cross as binary, not as JSON number lists.
    serialization: 'advanced',
    // The worker's own output goes to stderr: stdout belongs to the command (and its --json output).
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  })
  child.on('error', () => {}) // spawn and IPC errors surface as the exit event
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue
    createInterface({ input: stream }).on('line', (line) => {
      if (!options.quiet && !DAWN_NOISE.test(line)) process.stderr.write(`${line}\n`)
    })
  }
  return new WorkerClient(childTransport(child))
}
