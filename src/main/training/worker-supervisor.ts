/**
 * The tfjs worker's lifecycle in main: started on first use (training and inspection share it), its one
 * `ready` event caught from the start so anyone may ask for the backend later, and restarted on next use
 * after it exits.
 */
import type { BackendReport } from '../../shared/backend'
import type { WorkerClient } from './worker-client'

export class WorkerSupervisor {
  private worker: WorkerClient | null = null
  private ready: Promise<BackendReport> | null = null

  constructor(private readonly start: () => WorkerClient) {}

  /** The worker, started when there is none. */
  client(): WorkerClient {
    if (!this.worker) {
      const worker = this.start()
      this.worker = worker
      this.ready = worker.waitFor('ready').then((event) => event.backend)
      this.ready.catch(() => {})
      worker.onExit(() => {
        if (this.worker === worker) this.worker = null
      })
    }
    return this.worker
  }

  /** The backend the worker selected (starting it if needed); rejects if it failed to start. */
  backend(): Promise<BackendReport> {
    this.client()
    return this.ready as Promise<BackendReport>
  }

  /** Ends the worker at once (its run becomes interrupted, as after a crash). */
  kill(): void {
    this.worker?.kill('SIGKILL')
  }

  async shutdown(): Promise<void> {
    await this.worker?.shutdown()
    this.worker = null
  }
}
