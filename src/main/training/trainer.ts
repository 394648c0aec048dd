/**
 * Job control in main: runs wait in a queue and train one at a time, each in a session of its engine; what
 * a session reports is written to the run store first and announced second (RunRecorder), so whatever a UI
 * or CLI shows is on disk. One process trains per data dir, across processes (the training lock).
 *
 * Failure is always recorded in the run: an engine process that dies (killed, out of memory, device lost)
 * leaves the run interrupted (resumable from its last checkpoint), an error in training marks it failed
 * with the message, a loss that is no longer finite stops it with advice.
 */
import type { BackendReport } from '../../shared/backend'
import { oneLine } from '../../shared/errors'
import type { EngineRecord } from '../../shared/records'
import {
  isTraining,
  type DataParallel,
  type LogLine,
  type RunMeta,
  type SnapshotIndexEntry,
} from '../../shared/runs'
import type { WorkerEvent } from '../../shared/worker-protocol'
import { readManifest } from '../datasets/store'
import { trainingBusy, trainingLock, type ProcessLock } from '../process-lock'
import { RunStoreError, type RunStore } from '../runs/run-store'
import { checkDatasetFits } from './dataset-fit'
import { TrainingError } from './errors'
import { checkProcessesFit, dataParallelOf, type SessionOptions } from './data-parallel'
import { nonFiniteLoss, RunRecorder } from './recorder'
import { clearRequests, watchStopRequest } from './requests'
import { externalCheckpoints, loadResumePoint } from './resume-point'
import { startTfjsSession, type Outcome, type TrainingSession } from './session'
import { startTorchSession, torchEngineInfo } from './torch-engine'
import type { WorkerClient } from './worker-client'
import { WorkerSupervisor } from './worker-supervisor'

export type TrainerEvent =
  | { type: 'record'; runId: string; record: LogLine }
  | { type: 'snapshot'; runId: string; entry: SnapshotIndexEntry }
  | { type: 'run'; run: RunMeta }
  /** A line an engine process printed (the PyTorch engine's warnings and errors). */
  | { type: 'output'; runId: string; line: string }
  | Extract<WorkerEvent, { type: 'memory' }>

interface ActiveRun {
  id: string
  /** The status this process gives the run while it trains it. */
  state: Pick<RunMeta, 'status' | 'error'>
  session: TrainingSession | null
  /** Everything reported so far, persisted in order; the outcome is applied after it. */
  chain: Promise<void>
  /** Set when this process decided to end the run (disk refused, loss not finite): the outcome is a failure. */
  failure: string | null
  /** The run as last written. */
  meta: RunMeta
  done: Promise<RunMeta>
  stopWatch: () => void
}

export class Trainer {
  private readonly listeners = new Set<(event: TrainerEvent) => void>()
  private readonly queue: string[] = []
  private readonly lock: ProcessLock
  private readonly workers: WorkerSupervisor
  private active: ActiveRun | null = null
  private pumping = false
  private readonly settlers = new Map<string, (meta: RunMeta) => void>()
  /** How each queued run's session trains, when not in one process. */
  private readonly parallel = new Map<string, DataParallel>()

  constructor(
    readonly store: RunStore,
    startWorker: () => WorkerClient,
  ) {
    this.lock = trainingLock(store.root)
    this.workers = new WorkerSupervisor(startWorker)
  }

  on(listener: (event: TrainerEvent) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  private emit(event: TrainerEvent): void {
    for (const listener of this.listeners) listener(event)
  }

  get activeRunId(): string | null {
    return this.active?.id ?? null
  }

  get queued(): readonly string[] {
    return this.queue
  }

  /** The tfjs worker: inspection and other work that needs no run go through it too. */
  workerClient(): WorkerClient {
    return this.workers.client()
  }

  /** The backend the tfjs worker selected (starting it if needed); rejects if it failed to start. */
  backend(): Promise<BackendReport> {
    return this.workers.backend()
  }

  /** Ends the engine at once (a second Ctrl+C): the active run becomes interrupted, as after a crash. */
  abort(): void {
    if (this.active?.session) this.active.session.kill()
    else this.workers.kill()
  }

  async shutdown(): Promise<void> {
    await this.workers.shutdown()
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
      // An attached run's writer is another process or machine: its lock is not ours to read.
      if (!isTraining(run.status) || this.active?.id === run.id || holder?.what === run.id) continue
      if (this.store.isAttached(run.id)) continue
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
  async train(runId: string, options: SessionOptions = {}): Promise<RunMeta> {
    return (await this.enqueue(runId, options)).done
  }

  /**
   * Checks that a run can train (not finished, not already queued, no other process training, dataset
   * present and fitting, checkpoints intact), then queues it. Resolves once it is queued, with a promise of
   * its end; rejects, changing nothing on disk, when it cannot train.
   */
  async enqueue(runId: string, options: SessionOptions = {}): Promise<{ done: Promise<RunMeta> }> {
    const meta = await this.store.read(runId)
    if (this.store.isAttached(runId))
      throw new TrainingError(
        `run ${runId} is attached from ${this.store.dir(runId)}: it trains where it was started; this workbench only follows it`,
      )
    if (meta.status === 'finished')
      throw new TrainingError(`run ${runId} has finished: there is nothing to resume`)
    if (this.active?.id === runId || this.queue.includes(runId))
      throw new TrainingError(`run ${runId} is already training or queued`)
    const holder = await this.lock.holder()
    if (holder && holder.pid !== process.pid) throw new TrainingError(trainingBusy(holder))
    let manifest
    try {
      manifest = await readManifest(meta.config.data.dataset, this.store.home)
    } catch (error) {
      throw new TrainingError(
        `dataset "${meta.config.data.dataset}" of run ${runId} cannot be read (${oneLine(error)}): import it again, see \`npm run r2b -- datasets\``,
      )
    }
    checkDatasetFits(meta.config, manifest)
    const parallel = dataParallelOf(meta, options.dataParallel)
    if (meta.config.engine === 'torch') {
      const torch = await torchEngineInfo()
      if (!torch.available) throw new TrainingError(`run ${runId} trains on PyTorch, but ${torch.reason}`)
      checkProcessesFit(parallel, torch)
    }
    // Everything a resume will load is checked now, before anything on disk changes.
    await loadResumePoint(this.store, runId)
    // Settled by this trainer alone (its end, a stop in the queue, a failure to start), never by what an
    // engine wrote into run.json: records may still be on their way when an engine says it finished.
    const done = new Promise<RunMeta>((resolve) => this.settlers.set(runId, resolve))
    this.queue.push(runId)
    if (parallel) this.parallel.set(runId, parallel)
    else this.parallel.delete(runId)
    this.emit({ type: 'run', run: await this.setStatus(runId, 'queued', null) })
    void this.pump()
    return { done }
  }

  pause(runId: string): void {
    this.activeSession(runId)?.pause()
  }

  resume(runId: string): void {
    this.activeSession(runId)?.resume()
  }

  /** Stops the active run at the next step boundary, or drops it from the queue. */
  async stop(runId: string): Promise<void> {
    const queued = this.queue.indexOf(runId)
    if (queued >= 0) {
      this.queue.splice(queued, 1)
      this.parallel.delete(runId)
      this.settled(await this.setStatus(runId, 'stopped', null))
      return
    }
    this.activeSession(runId)?.stop()
  }

  private activeSession(runId: string): TrainingSession | null {
    if (this.active?.id !== runId) throw new TrainingError(`run ${runId} is not training in this process`)
    return this.active.session
  }

  /** Announces a run's last state and resolves whoever waits for its end. */
  private settled(meta: RunMeta): void {
    this.emit({ type: 'run', run: meta })
    this.settlers.get(meta.id)?.(meta)
    this.settlers.delete(meta.id)
  }

  private setStatus(runId: string, status: RunMeta['status'], error: string | null): Promise<RunMeta> {
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
          this.settled(await this.setStatus(runId, 'failed', (error as Error).message))
        }
      }
    } finally {
      this.pumping = false
    }
  }

  /** Rolls the run back to its last checkpoint, loads what it continues from, and starts its session. */
  private async begin(runId: string): Promise<void> {
    const holder = await this.lock.acquire(runId)
    if (holder) throw new TrainingError(trainingBusy(holder))
    try {
      const last = await this.store.rollBackToLastCheckpoint(runId)
      const resumePoint = await loadResumePoint(this.store, runId)
      let meta = await this.store.read(runId)
      const external = await externalCheckpoints(this.store, meta)
      const torch = meta.config.engine === 'torch'
      // The PyTorch engine writes its own resume marker: it is the writer of the folder while it trains.
      if (last && !torch)
        await this.store.appendLog(runId, [
          { kind: 'resumed', stage: last.stage, epochsCompleted: last.epochsCompleted },
        ])
      await clearRequests(this.store, runId)
      meta = await this.store.update(runId, (m) => ({ ...m, status: 'running', error: null }))
      let settle: (meta: RunMeta) => void = () => {}
      const active: ActiveRun = {
        id: runId,
        state: { status: 'running', error: null },
        session: null,
        chain: Promise.resolve(),
        failure: null,
        meta,
        done: new Promise<RunMeta>((resolve) => (settle = resolve)),
        stopWatch: watchStopRequest(this.store.dir(runId), () => active.session?.stop()),
      }
      this.active = active
      this.emit({ type: 'run', run: meta })
      if (torch) {
        active.session = await this.startTorch(active)
        void active.session.ended.then((outcome) => {
          active.chain = active.chain.then(() => this.finish(active, outcome, settle))
        })
        return
      }
      const backend = await this.workers.backend()
      active.meta = meta = await this.store.update(runId, (m) => ({
        ...m,
        environment: {
          ...m.environment,
          engine: 'tfjs',
          device: { kind: backend.backend, description: backend.reason },
          versions: { node: process.versions.node, tfjs: backend.tfjsVersion },
          backend,
        },
      }))
      const recorder = new RunRecorder(this.store, runId, () => active.state)
      const then = (work: () => Promise<void>) => {
        active.chain = active.chain.then(work).catch((error: unknown) => {
          // The disk refused (full, removed): stop training rather than train without a record.
          active.failure ??= `could not write the run to disk: ${oneLine(error)}`
          active.session?.stop()
        })
      }
      active.session = startTfjsSession(this.workers, {
        meta,
        home: this.store.home,
        resume: resumePoint.last ? { completed: resumePoint.completed, current: resumePoint.current } : null,
        external,
        events: {
          record: (record) => then(() => this.persist(active, recorder, record)),
          memory: (event) => then(async () => this.emit(event)),
          paused: (paused) =>
            then(async () => {
              active.state = { status: paused ? 'paused' : 'running', error: null }
              this.emit({ type: 'run', run: await this.setStatus(runId, active.state.status, null) })
            }),
        },
      })
      void active.session.ended.then((outcome) => {
        // The outcome counts once everything reported before it is on disk.
        active.chain = active.chain.then(() => this.finish(active, outcome, settle))
      })
    } catch (error) {
      if (this.active?.id === runId) {
        this.active.stopWatch()
        this.active = null
      }
      await this.lock.release()
      throw error
    }
  }

  /** The PyTorch engine writes the run folder itself; what it writes is announced as it appears. */
  private startTorch(active: ActiveRun): Promise<TrainingSession> {
    return startTorchSession({
      store: this.store,
      runId: active.id,
      lockHolder: process.pid,
      dataParallel: this.parallel.get(active.id),
      followed: (change) => {
        if (change.type === 'record') this.emit({ type: 'record', runId: active.id, record: change.record })
        else if (change.type === 'snapshot')
          this.emit({ type: 'snapshot', runId: active.id, entry: change.entry })
        else {
          active.meta = change.run
          this.emit({ type: 'run', run: change.run })
        }
      },
      output: (line) => this.emit({ type: 'output', runId: active.id, line }),
    })
  }

  private async persist(active: ActiveRun, recorder: RunRecorder, record: EngineRecord): Promise<void> {
    for (const change of await recorder.record(record)) {
      if (change.type === 'record') this.emit({ type: 'record', runId: active.id, record: change.record })
      else if (change.type === 'snapshot')
        this.emit({ type: 'snapshot', runId: active.id, entry: change.entry })
      else {
        active.meta = change.run
        this.emit({ type: 'run', run: change.run })
      }
    }
    const advice = nonFiniteLoss(record)
    if (advice && !active.failure) {
      active.failure = advice
      active.session?.stop()
    }
  }

  private async finish(active: ActiveRun, outcome: Outcome, settle: (meta: RunMeta) => void): Promise<void> {
    if (this.active !== active) return
    this.active = null
    this.parallel.delete(active.id)
    active.stopWatch()
    let { status, error } = outcome
    if (status === 'interrupted')
      error = `${active.failure ?? error}; continue with \`npm run r2b -- resume ${active.id}\``
    else if (active.failure) [status, error] = ['failed', active.failure]
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
    this.settled(meta)
    settle(meta)
    void this.pump()
  }
}
