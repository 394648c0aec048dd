/**
 * Job control in main: runs wait in a queue and train one at a time in the worker; every record the worker
 * sends is written to the run store first and announced second, so whatever a UI or CLI shows is on disk.
 *
 * Failure is always recorded in the run: a worker that dies (killed, out of memory, device lost) marks the
 * run interrupted (resumable from its last checkpoint), an error in training marks it failed with the
 * message, a loss that is no longer finite stops it with advice.
 */
import { existsSync } from 'node:fs'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { BackendReport } from '../../shared/backend'
import type { EngineRecord } from '../../shared/records'
import type { RunMeta, CheckpointLine, LogLine } from '../../shared/runs'
import type { Checkpoint } from '../../shared/checkpoint'
import type { WorkerCommand, WorkerEvent } from '../../shared/worker-protocol'
import { oneLine } from '../../shared/errors'
import { readManifest } from '../datasets/store'
import { checkDatasetFits } from './dataset-fit'
import { TrainingError } from './errors'
import type { RunStore } from '../runs/run-store'
import { RunStoreError } from '../runs/run-store'
import { trainingBusy, trainingLock, type ProcessLock } from '../process-lock'
import type { WorkerClient } from './worker-client'

export type TrainerEvent =
  | { type: 'record'; runId: string; record: EngineRecord }
  | { type: 'run'; run: RunMeta }
  | Extract<WorkerEvent, { type: 'memory' }>

/** A file another process (e.g. `r2b stop RUN`) drops into the run folder to ask the trainer to stop. */
export const STOP_REQUEST = 'stop-request'

interface ActiveRun {
  id: string
  meta: RunMeta
  done: Promise<RunMeta>
  settle: (meta: RunMeta) => void
  chain: Promise<void>
  failure: string | null
  stopPoll: NodeJS.Timeout
}

export class Trainer {
  private readonly listeners = new Set<(event: TrainerEvent) => void>()
  private readonly queue: string[] = []
  private readonly lock: ProcessLock
  private worker: WorkerClient | null = null
  private active: ActiveRun | null = null
  private pumping = false

  constructor(
    readonly store: RunStore,
    private readonly startWorker: () => WorkerClient,
  ) {
    this.lock = trainingLock(store.root)
  }

  on(listener: (event: TrainerEvent) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  private emit(event: TrainerEvent): void {
    for (const listener of this.listeners) listener(event)
  }

  /**
   * Runs whose status says they are training but that no live process trains: the process was killed or
   * the machine lost power. They become `interrupted`, resumable from their last checkpoint.
   */
  async reconcile(): Promise<RunMeta[]> {
    // Runs first, the lock second: a run that starts meanwhile takes the lock before it says `running`,
    // so a run read as training is either held by then or truly abandoned.
    const { runs } = await this.store.list()
    const holder = await this.lock.holder()
    const fixed: RunMeta[] = []
    for (const run of runs) {
      if (!isTraining(run.status) || this.active?.id === run.id || holder?.what === run.id) continue
      let changed = false
      const meta = await this.store.update(run.id, (m) => {
        // Re-read under the write: only a run still marked training is changed.
        if (!isTraining(m.status)) return m
        changed = true
        return {
          ...m,
          status: 'interrupted',
          error: `the process training it ended unexpectedly; continue with \`npm run r2b -- resume ${run.id}\``,
          stages: m.stages.map((s) => (s.status === 'running' ? { ...s, status: 'stopped' } : s)),
        }
      })
      if (changed) fixed.push(meta)
    }
    return fixed
  }

  /** Queues a run (new or to resume); resolves when it has finished, stopped, failed or been interrupted. */
  async train(runId: string): Promise<RunMeta> {
    return (await this.enqueue(runId)).done
  }

  /**
   * Checks that a run can train (not finished, not already queued, no other process training, dataset
   * present, checkpoints intact), then queues it. Resolves once it is queued, with a promise of its end;
   * rejects, changing nothing on disk, when it cannot train.
   */
  async enqueue(runId: string): Promise<{ done: Promise<RunMeta> }> {
    const meta = await this.store.read(runId)
    if (meta.status === 'finished')
      throw new TrainingError(`run ${runId} has finished: there is nothing to resume`)
    if (this.active?.id === runId || this.queue.includes(runId))
      throw new TrainingError(`run ${runId} is already training or queued`)
    const holder = await this.lock.holder()
    if (holder && holder.pid !== process.pid) {
      throw new TrainingError(trainingBusy(holder))
    }
    let manifest
    try {
      manifest = await readManifest(meta.config.data.dataset, this.store.home)
    } catch (error) {
      throw new TrainingError(
        `dataset "${meta.config.data.dataset}" of run ${runId} cannot be read (${oneLine(error)}): import it again, see \`npm run r2b -- datasets\``,
      )
    }
    checkDatasetFits(meta.config, manifest)
    // Everything a resume will load is checked now, before anything on disk changes.
    await this.loadResumePoint(runId)
    const done = new Promise<RunMeta>((resolve) => {
      const off = this.on((event) => {
        if (event.type === 'run' && event.run.id === runId && isSettled(event.run.status)) {
          off()
          resolve(event.run)
        }
      })
    })
    this.queue.push(runId)
    this.emit({ type: 'run', run: await this.setStatus(runId, 'queued', null) })
    void this.pump()
    return { done }
  }

  pause(runId: string): void {
    this.command(runId, { type: 'pause' })
  }

  resume(runId: string): void {
    this.command(runId, { type: 'resume' })
  }

  /** Stops the active run at the next step boundary, or drops it from the queue. */
  async stop(runId: string): Promise<void> {
    const queued = this.queue.indexOf(runId)
    if (queued >= 0) {
      this.queue.splice(queued, 1)
      this.emit({ type: 'run', run: await this.setStatus(runId, 'stopped', null) })
      return
    }
    this.command(runId, { type: 'stop' })
  }

  get activeRunId(): string | null {
    return this.active?.id ?? null
  }

  get queued(): readonly string[] {
    return this.queue
  }

  /** The worker, started on first use; inspection and other work that needs no run go through it too. */
  workerClient(): WorkerClient {
    if (!this.worker) {
      const worker = this.startWorker()
      this.worker = worker
      // Its one `ready` event, caught from the start whoever asks for the backend later.
      this.backendReady = worker.waitFor('ready').then((event) => event.backend)
      this.backendReady.catch(() => {})
      worker.on((event) => this.onWorkerEvent(event))
      worker.onExit((code, signal) => {
        if (this.worker === worker) this.worker = null
        const active = this.active
        if (active) {
          const why = signal ? `was killed (${signal})` : `exited with code ${code}`
          active.failure = `the training worker ${why}`
          // After the records it sent before dying are on disk: the run is settled only once it is quiet.
          active.chain = active.chain.then(() =>
            this.finish(
              'interrupted',
              `${active.failure}; continue with \`npm run r2b -- resume ${active.id}\``,
            ),
          )
        }
      })
    }
    return this.worker
  }

  /** Ends the worker at once (a second Ctrl+C): the active run becomes interrupted, as after a crash. */
  abort(): void {
    this.worker?.kill('SIGKILL')
  }

  async shutdown(): Promise<void> {
    await this.worker?.shutdown()
    this.worker = null
  }

  private command(runId: string, command: WorkerCommand): void {
    if (this.active?.id !== runId) throw new TrainingError(`run ${runId} is not training in this process`)
    this.worker?.send(command)
  }

  private async setStatus(runId: string, status: RunMeta['status'], error: string | null): Promise<RunMeta> {
    return this.store.update(runId, (m) => ({ ...m, status, error }))
  }

  private async pump(): Promise<void> {
    if (this.pumping) return
    this.pumping = true
    try {
      while (!this.active && this.queue.length > 0) {
        const runId = this.queue.shift() as string
        try {
          await this.begin(runId)
          await (this.active as ActiveRun | null)?.done
        } catch (error) {
          this.emit({ type: 'run', run: await this.setStatus(runId, 'failed', (error as Error).message) })
        }
      }
    } finally {
      this.pumping = false
    }
  }

  /** Reads what the run needs to continue (verifying checksums), then hands it to the worker. */
  private async begin(runId: string): Promise<void> {
    const holder = await this.lock.acquire(runId)
    if (holder) throw new TrainingError(trainingBusy(holder))
    try {
      // Cut the log back to its last checkpoint: the resume point loaded next starts there.
      await this.store.rollBackToLastCheckpoint(runId)
      const { last, completed, current } = await this.loadResumePoint(runId)
      let meta = await this.store.read(runId)
      const external = await this.externalCheckpoints(meta)
      if (last)
        await this.store.appendLog(runId, [
          { kind: 'resumed', stage: last.stage, epoch: last.epoch } as LogLine,
        ])
      await rm(join(this.store.dir(runId), STOP_REQUEST), { force: true })
      meta = await this.store.update(runId, (m) => ({ ...m, status: 'running', error: null }))
      let settle: (meta: RunMeta) => void = () => {}
      const done = new Promise<RunMeta>((resolve) => (settle = resolve))
      const stopPoll = setInterval(() => {
        if (existsSync(join(this.store.dir(runId), STOP_REQUEST))) this.worker?.send({ type: 'stop' })
      }, 500)
      this.active = { id: runId, meta, done, settle, chain: Promise.resolve(), failure: null, stopPoll }
      this.emit({ type: 'run', run: meta })
      const worker = this.workerClient()
      const backend = await this.backend()
      this.active.meta = await this.store.update(runId, (m) => ({
        ...m,
        environment: { ...m.environment, backend },
      }))
      worker.send({
        type: 'train',
        runId,
        config: meta.config,
        home: this.store.home,
        resume: last ? { completed, current } : null,
        external,
      })
    } catch (error) {
      if (this.active?.id === runId) {
        clearInterval(this.active.stopPoll)
        this.active = null
      }
      await this.lock.release()
      throw error
    }
  }

  /**
   * The checkpoints a resume starts from, verified: the final one of every completed stage and the last one
   * of the stage in progress. A missing or corrupted checkpoint is an error that names it.
   */
  private async loadResumePoint(runId: string) {
    const lines = await this.store.checkpoints(runId)
    const last = lines.at(-1) ?? null
    const load = (line: CheckpointLine) => this.store.readCheckpoint(runId, line)
    const completed: Record<string, Checkpoint> = {}
    for (const line of lines.filter((l) => l.final)) completed[line.stage] = await load(line)
    const current = last && !last.final ? await load(last) : null
    return { last, completed, current }
  }

  private backendReady: Promise<BackendReport> | null = null

  /** The backend the worker selected (starting the worker if needed); rejects if it failed to start. */
  backend(): Promise<BackendReport> {
    this.workerClient()
    return this.backendReady as Promise<BackendReport>
  }

  /** Final checkpoints of other runs' stages this run refers to (`run:<id>/<stage>`). */
  private async externalCheckpoints(meta: RunMeta): Promise<Record<string, Checkpoint>> {
    const out: Record<string, Checkpoint> = {}
    for (const stage of meta.config.stages) {
      for (const ref of [stage.teacher, stage.init]) {
        if (!ref.startsWith('run:') || out[ref]) continue
        const [otherRun, otherStage] = ref.slice(4).split('/') as [string, string]
        const line = (await this.store.checkpoints(otherRun))
          .filter((l) => l.stage === otherStage && l.final)
          .at(-1)
        if (!line) throw new TrainingError(`${ref}: run ${otherRun} has no finished stage "${otherStage}"`)
        out[ref] = await this.store.readCheckpoint(otherRun, line)
      }
    }
    return out
  }

  private onWorkerEvent(event: WorkerEvent): void {
    const active = this.active
    if (!active) return
    if (event.type === 'record' && event.runId === active.id) {
      const record = event.record
      active.chain = active.chain
        .then(() => this.persist(active, record))
        .catch((error: unknown) => {
          // The disk refused (full, removed): stop training rather than train without a record.
          active.failure = `could not write the run to disk: ${(error as Error).message}`
          this.worker?.send({ type: 'stop' })
        })
    } else if (event.type === 'memory' && event.runId === active.id) {
      active.chain = active.chain.then(() => this.emit(event))
    } else if (event.type === 'paused' || event.type === 'resumed') {
      active.chain = active.chain.then(async () => {
        active.meta = await this.setStatus(active.id, event.type === 'paused' ? 'paused' : 'running', null)
        this.emit({ type: 'run', run: active.meta })
      })
    } else if (event.type === 'train-done' && event.runId === active.id) {
      active.chain = active.chain.then(() =>
        active.failure
          ? this.finish('failed', active.failure)
          : this.finish(event.stopped ? 'stopped' : 'finished', null),
      )
    } else if (event.type === 'failed' && (event.runId === active.id || event.runId === undefined)) {
      active.chain = active.chain.then(() => this.finish('failed', active.failure ?? event.message))
    }
  }

  private async persist(active: ActiveRun, record: EngineRecord): Promise<void> {
    const id = active.id
    switch (record.kind) {
      case 'attention':
      case 'gates':
        await this.store.writeSnapshot(id, record)
        break
      case 'checkpoint': {
        const spec = active.meta.config.stages.find((s) => s.name === record.stage)
        const line: CheckpointLine = await this.store.writeCheckpoint(
          id,
          record,
          record.epoch === spec?.epochs,
        )
        active.meta = await this.updateActive(active, (m) => ({
          ...m,
          stages: m.stages.map((s) => (s.name === record.stage ? { ...s, epochsDone: line.epoch } : s)),
        }))
        this.emit({ type: 'run', run: active.meta })
        break
      }
      default:
        await this.store.appendLog(id, [record])
    }
    if (record.kind === 'step' && !Number.isFinite(record.loss.total) && !active.failure) {
      active.failure =
        `the loss became ${record.loss.total} at stage ${record.stage}, step ${record.step}: ` +
        'lower the learning rate (e.g. --set stages.<i>.optimizer.learningRate=...) and resume or start again'
      this.worker?.send({ type: 'stop' })
    }
    if (record.kind === 'stage-start' || record.kind === 'epoch' || record.kind === 'stage-end') {
      active.meta = await this.updateActive(active, (m) => ({
        ...m,
        stages: m.stages.map((s) => {
          if (s.name !== record.stage) return s
          if (record.kind === 'stage-start') return { ...s, status: 'running' }
          if (record.kind === 'epoch') return { ...s, testTop1: record.test.top1, testTop5: record.test.top5 }
          const status = record.stopped ? 'stopped' : 'finished'
          if (!record.test) return { ...s, status }
          return { ...s, status, testTop1: record.test.top1, testTop5: record.test.top5 }
        }),
      }))
      this.emit({ type: 'run', run: active.meta })
    }
    this.emit({ type: 'record', runId: id, record })
  }

  /**
   * A change to the active run's record. While this process trains the run, its status is this process's
   * to say: whatever another process wrote there meanwhile is overwritten, not adopted.
   */
  private updateActive(active: ActiveRun, change: (meta: RunMeta) => RunMeta): Promise<RunMeta> {
    return this.store.update(active.id, (m) => ({
      ...change(m),
      status: active.meta.status,
      error: active.meta.error,
    }))
  }

  private async finish(status: RunMeta['status'], error: string | null): Promise<void> {
    const active = this.active
    if (!active) return
    this.active = null
    clearInterval(active.stopPoll)
    let meta: RunMeta
    try {
      // A stage left mid-way (failure, kill, stop) no longer says it is running.
      meta = await this.store.update(active.id, (m) => ({
        ...m,
        status,
        error,
        stages: m.stages.map((s) => (s.status === 'running' ? { ...s, status: 'stopped' } : s)),
      }))
    } catch (problem) {
      if (!(problem instanceof RunStoreError)) throw problem
      meta = { ...active.meta, status, error }
    }
    await this.lock.release()
    this.emit({ type: 'run', run: meta })
    active.settle(meta)
    void this.pump()
  }
}

function isTraining(status: RunMeta['status']): boolean {
  return status === 'running' || status === 'paused'
}

function isSettled(status: RunMeta['status']): boolean {
  return status === 'finished' || status === 'failed' || status === 'stopped' || status === 'interrupted'
}

/** Asks the process training `runId` (maybe another one) to stop it, through a file in the run folder. */
export async function requestStop(store: RunStore, runId: string): Promise<void> {
  await writeFile(join(store.dir(runId), STOP_REQUEST), new Date().toISOString())
}
