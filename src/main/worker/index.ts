/**
 * The training worker's entry: one file for Electron's utilityProcess, a Node child process and worker
 * thread alike. It selects the backend, announces it, then serves commands from main.
 */
import { firstIssue } from '../../shared/errors'
import { WorkerCommand, type WorkerEvent } from '../../shared/worker-protocol'
import { initBackend, releaseBackend } from '../backend/backend'
import { loadCheckData, runBackendCheck } from './backend-check'
import { connectToParent } from './port'
import { TrainingJob } from './training-job'
import * as tf from '@tensorflow/tfjs'
import { openDataset } from '../datasets/reader'
import { inspectImage } from '../engine/inspect'

// Ctrl+C in a terminal reaches every process of its group, this one too. Main decides what it means (stop at
// the next step, or end this worker); the worker must not die of it on its own.
process.on('SIGINT', () => {})

const port = connectToParent()
const send = (event: WorkerEvent) => port.post(event)

let job: TrainingJob | null = null

async function train(command: Extract<WorkerCommand, { type: 'train' }>): Promise<void> {
  if (job) throw new Error(`already training run ${job.runId}`)
  job = new TrainingJob(command, send)
  try {
    await job.run()
  } catch (error) {
    send({
      type: 'failed',
      runId: command.runId,
      message: error instanceof Error ? error.message : String(error),
    })
  } finally {
    job = null
  }
}

async function inspect(command: Extract<WorkerCommand, { type: 'inspect' }>): Promise<void> {
  try {
    // The same reader and normalisation as training's probe images.
    const reader = await openDataset(
      command.dataset,
      command.home,
      command.inputSize === undefined ? {} : { inputSize: command.inputSize },
    )
    try {
      const batch = await reader.readImages('test', [command.image])
      try {
        const result = await inspectImage({
          checkpoint: command.checkpoint,
          teacher: command.teacher,
          images: batch.images as tf.Tensor4D,
          form: command.form,
        })
        send({ type: 'inspect-result', requestId: command.requestId, result: { ...result } })
      } finally {
        tf.dispose([batch.images, batch.labels])
      }
    } finally {
      await reader.close()
    }
  } catch (error) {
    send({ type: 'inspect-failed', requestId: command.requestId, message: (error as Error).message })
  }
}

async function handle(command: WorkerCommand): Promise<void> {
  switch (command.type) {
    case 'train':
      // Not awaited: the worker keeps serving pause/stop/inspect while it trains.
      void train(command)
      return
    case 'pause':
    case 'resume':
      job?.setPaused(command.type === 'pause')
      return
    case 'stop':
      job?.stop()
      return
    case 'inspect':
      return inspect(command)
    case 'bench-step': {
      if (job) {
        send({
          type: 'bench-failed',
          requestId: command.requestId,
          message: `the worker is training run ${job.runId}`,
        })
        return
      }
      try {
        const { benchStages } = await import('../engine/bench')
        const stepMs = await benchStages(command.config, { batch: command.batchSize, steps: command.steps })
        send({ type: 'bench-result', requestId: command.requestId, stepMs })
      } catch (error) {
        send({ type: 'bench-failed', requestId: command.requestId, message: (error as Error).message })
      }
      return
    }
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
  if (!parsed.success) {
    const problem = `worker received an invalid command: ${firstIssue(parsed.error)}`
    // A request that carries an id gets its answer, so its waiter does not wait on.
    const requestId = (raw as { requestId?: unknown } | null)?.requestId
    if (typeof requestId === 'number') return send({ type: 'inspect-failed', requestId, message: problem })
    return fail(new Error(problem))
  }
  backendReady.then(() => handle(parsed.data)).catch(fail)
})
