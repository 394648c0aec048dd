/**
 * The backend host: implements WorkbenchApi over the main-process services (datasets, runs, the training
 * worker). Transports (Electron IPC, the local WebSocket) hand it untrusted calls through `handleCall`,
 * which validates them against the shared schemas; nothing reaches a service unvalidated.
 */
import { ApiCall, apiSchemas, type AboutInfo, type WorkbenchApi, type WorkbenchEvent } from '../../shared/api'
import { API_METHODS, type ApiMethod } from '../../shared/api-methods'
import type { BackendReport } from '../../shared/backend'
import { dataHome } from '../paths'
import type { WorkerClient } from '../training/worker-client'

export interface HostOptions {
  appVersion: string
  versions: Record<string, string>
  /** Starts the training worker (a utilityProcess in Electron, a child process elsewhere). */
  startWorker: () => WorkerClient
}

export class WorkbenchHost {
  private readonly listeners = new Set<(event: WorkbenchEvent) => void>()
  private backend: BackendReport | null = null
  private backendError: string | null = null
  private worker: WorkerClient | null = null

  constructor(private readonly options: HostOptions) {}

  /** Starts the worker and records the backend it selects. */
  start(): void {
    const worker = this.options.startWorker()
    this.worker = worker
    worker.waitFor('ready').then(
      ({ backend }) => {
        this.backend = backend
        this.emit({ type: 'backend', backend, error: null })
      },
      (error: unknown) => {
        this.backendError = error instanceof Error ? error.message : String(error)
        this.emit({ type: 'backend', backend: null, error: this.backendError })
      },
    )
  }

  async stop(): Promise<void> {
    await this.worker?.shutdown()
    this.worker = null
  }

  readonly api: WorkbenchApi = {
    about: async (): Promise<AboutInfo> => ({
      appVersion: this.options.appVersion,
      versions: this.options.versions,
      dataHome: dataHome(),
      backend: this.backend,
      backendError: this.backendError,
    }),
    onEvent: (listener) => {
      this.listeners.add(listener)
      return () => this.listeners.delete(listener)
    },
  }

  /** Validates an untrusted call (method name, then arguments), runs it, and validates what it returns. */
  async handleCall(raw: unknown): Promise<unknown> {
    const call = ApiCall.safeParse(raw)
    if (!call.success) throw new Error(`invalid call: ${call.error.issues[0]?.message ?? 'malformed'}`)
    const method = call.data.method as ApiMethod
    if (!(API_METHODS as readonly string[]).includes(method))
      throw new Error(`unknown method "${call.data.method}"`)
    const schema = apiSchemas[method]
    const args = schema.args.safeParse(call.data.args)
    if (!args.success)
      throw new Error(`invalid arguments to ${method}: ${args.error.issues.map((i) => i.message).join('; ')}`)
    const implementation = this.api[method] as (...a: unknown[]) => Promise<unknown>
    return schema.result.parse(await implementation(...args.data))
  }

  private emit(event: WorkbenchEvent): void {
    for (const listener of this.listeners) listener(event)
  }
}
