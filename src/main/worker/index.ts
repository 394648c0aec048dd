/**
 * The training worker's entry: one file for Electron's utilityProcess, a Node child process and worker
 * thread alike. It selects the backend, announces it, then serves commands from main.
 */
import { WorkerCommand, type WorkerEvent } from '../../shared/worker-protocol'
import { initBackend, releaseBackend } from './backend'
import { loadCheckData, runBackendCheck } from './backend-check'
import { connectToParent } from './port'

const port = connectToParent()
const send = (event: WorkerEvent) => port.post(event)

async function handle(command: WorkerCommand): Promise<void> {
  switch (command.type) {
    case 'check': {
      const data = await loadCheckData(Math.ceil((command.steps * command.batchSize) / 10))
      const result = await runBackendCheck(data, {
        steps: command.steps,
        batchSize: command.batchSize,
        onStep: (step) => send({ type: 'check-step', ...step }),
      })
      send({ type: 'check-done', ...result })
      return
    }
    case 'shutdown':
      releaseBackend()
      port.close()
      return
  }
}

function fail(error: unknown): void {
  send({ type: 'failed', message: error instanceof Error ? error.message : String(error) })
}

// Commands that arrive while the backend starts wait for it.
const backendReady = initBackend()
backendReady.then(
  (backend) => send({ type: 'ready', backend }),
  (error: unknown) => {
    fail(error)
    port.close()
  },
)

port.onMessage((raw) => {
  const parsed = WorkerCommand.safeParse(raw)
  if (!parsed.success) return fail(new Error(`worker received an invalid command: ${parsed.error.message}`))
  backendReady.then(() => handle(parsed.data)).catch(fail)
})
