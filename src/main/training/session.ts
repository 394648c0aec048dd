/**
 * A training session: one engine training one run, from its start (or resume point) to an outcome. The
 * trainer starts one per run and persists what it reports; the engine decides nothing about the store.
 */
import type { Checkpoint } from '../../shared/checkpoint'
import type { EngineRecord } from '../../shared/records'
import type { RunMeta } from '../../shared/runs'
import type { WorkerEvent } from '../../shared/worker-protocol'
import type { WorkerSupervisor } from './worker-supervisor'

export interface Outcome {
  status: 'finished' | 'stopped' | 'failed' | 'interrupted'
  /** Why it failed or was interrupted, in words a user can act on. */
  error: string | null
}

export interface SessionEvents {
  /** The engine's records, in order, for the trainer to persist. */
  record(record: EngineRecord): void
  paused(paused: boolean): void
  memory(event: Extract<WorkerEvent, { type: 'memory' }>): void
}

export interface TrainingSession {
  stop(): void
  pause(): void
  resume(): void
  /** Ends the engine at once (a second Ctrl+C): the run becomes interrupted, as after a crash. */
  kill(): void
  /** Settles once the engine is done with the run, whatever the reason. */
  readonly ended: Promise<Outcome>
}

export interface SessionStart {
  meta: RunMeta
  home: string
  resume: { completed: Record<string, Checkpoint>; current: Checkpoint | null } | null
  external: Record<string, Checkpoint>
  events: SessionEvents
}

/** The tfjs engine: the run trains in the worker, which sends every record back over its channel. */
export function startTfjsSession(workers: WorkerSupervisor, start: SessionStart): TrainingSession {
  const worker = workers.client()
  const runId = start.meta.id
  let settle: (outcome: Outcome) => void = () => {}
  const ended = new Promise<Outcome>((resolve) => (settle = resolve))
  const offEvent = worker.on((event) => {
    if (event.type === 'record' && event.runId === runId) start.events.record(event.record)
    else if (event.type === 'memory' && event.runId === runId) start.events.memory(event)
    else if ((event.type === 'paused' || event.type === 'resumed') && event.runId === runId)
      start.events.paused(event.type === 'paused')
    else if (event.type === 'train-done' && event.runId === runId)
      settle({ status: event.stopped ? 'stopped' : 'finished', error: null })
    else if (event.type === 'failed' && (event.runId === runId || event.runId === undefined))
      settle({ status: 'failed', error: event.message })
  })
  const offExit = worker.onExit((code, signal) => {
    const why = signal ? `was killed (${signal})` : `exited with code ${code}`
    settle({ status: 'interrupted', error: `the training worker ${why}` })
  })
  void ended.then(() => {
    offEvent()
    offExit()
  })
  const send = (command: Parameters<typeof worker.send>[0]) => {
    try {
      worker.send(command)
    } catch {
      // It has exited: its exit settles the session.
    }
  }
  send({
    type: 'train',
    runId,
    config: start.meta.config,
    home: start.home,
    resume: start.resume,
    external: start.external,
  })
  return {
    stop: () => send({ type: 'stop' }),
    pause: () => send({ type: 'pause' }),
    resume: () => send({ type: 'resume' }),
    kill: () => workers.kill(),
    ended,
  }
}
