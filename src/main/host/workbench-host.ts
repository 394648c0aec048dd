/**
 * The backend host: implements WorkbenchApi over the main-process services (datasets, runs, the training
 * worker). Transports (Electron IPC, the local WebSocket) hand it untrusted calls through `handleCall`,
 * which validates them against the shared schemas; nothing reaches a service unvalidated.
 *
 * It owns one RunStore and one Trainer over the data dir. Everything here is a thin call into those services;
 * what crosses the boundary as binary (pixels, maps, gates) is base64-encoded with src/shared/binary.ts.
 */
import {
  ApiCall,
  apiSchemas,
  type AboutInfo,
  type ExportSummary,
  type InspectRequest,
  type Inspection,
  type RunEstimate,
  type WorkbenchApi,
  type WorkbenchEvent,
} from '../../shared/api'
import { API_METHODS, type ApiMethod } from '../../shared/api-methods'
import type { BackendReport } from '../../shared/backend'
import { encodeFloat32, encodeUint8 } from '../../shared/binary'
import type { SplitName } from '../../shared/datasets'
import type { TensorData } from '../../shared/records'
import type { WorkerEvent } from '../../shared/worker-protocol'
import { encodeSnapshotData } from '../../shared/snapshot-wire'
import type { RunConfig } from '../../shared/run-config'
import { importDataset } from '../datasets/import'
import type { DatasetReader } from '../datasets/reader'
import { listDatasets, removeDataset, renameDataset } from '../datasets/store'
import { mkdir } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { dataHome } from '../paths'
import { RunFollower } from '../runs/follower'
import { RunStore } from '../runs/run-store'
import { trainingLock } from '../process-lock'
import { isTraining, RunId } from '../../shared/runs'
import { listAblations } from '../training/ablation'
import { inspectRun } from '../training/inspect-run'
import { createRun } from '../training/new-run'
import { TrainingError } from '../training/errors'
import { refuseIfDatasetInUse } from '../training/guards'
import { benchTorchStep, torchEngineInfo } from '../training/torch-engine'
import { Trainer } from '../training/trainer'
import type { SessionOptions } from '../training/data-parallel'
import type { WorkerClient } from '../training/worker-client'

export interface HostOptions {
  appVersion: string
  versions: Record<string, string>
  /** Starts the training worker (a utilityProcess in Electron, a child process elsewhere). */
  startWorker: () => WorkerClient
  /** The data dir (datasets and runs); defaults to dataHome(). */
  home?: string
  /** A native picker for the import source; absent where there is no display (serve). */
  pickPath?: () => Promise<string | null>
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

function encodeTensor(tensor: TensorData) {
  return { shape: tensor.shape, data: encodeFloat32(tensor.data) }
}

export class WorkbenchHost {
  private readonly listeners = new Set<(event: WorkbenchEvent) => void>()
  private backend: BackendReport | null = null
  private backendError: string | null = null
  readonly home: string
  readonly store: RunStore
  readonly trainer: Trainer
  private readonly imports = new Map<string, AbortController>()
  private readonly followers = new Map<string, RunFollower>()
  private lockWatch: NodeJS.Timeout | null = null
  private nextImport = 1
  private nextInspect = 1
  private nextBench = 1
  private offTrainer: () => void

  constructor(private readonly options: HostOptions) {
    this.home = options.home ?? dataHome()
    this.store = new RunStore(this.home)
    this.trainer = new Trainer(this.store, options.startWorker)
    this.offTrainer = this.trainer.on((event) => {
      if (event.type === 'run') this.emit({ type: 'run', run: event.run })
      else if (event.type === 'record')
        this.emit({ type: 'record', runId: event.runId, record: event.record })
      else if (event.type === 'snapshot') {
        const { kind, stage, epochsCompleted } = event.entry
        this.emit({ type: 'snapshot', runId: event.runId, kind, stage, epochsCompleted })
      }
    })
  }

  /**
   * Follows a run another process writes (an attached folder, or a run of this store that a CLI `train`
   * trains): what it appends reaches the UI as a run this host trains would. A run of this store is
   * followed while it trains.
   */
  private follow(id: string): void {
    if (this.followers.has(id)) return
    const follower = new RunFollower(this.store, id, (change) => {
      if (change.type === 'run') {
        this.emit({ type: 'run', run: change.run })
        if (!this.store.isAttached(id) && !isTraining(change.run.status)) this.unfollow(id)
      } else if (change.type === 'record') this.emit({ type: 'record', runId: id, record: change.record })
      else {
        const { kind, stage, epochsCompleted } = change.entry
        this.emit({ type: 'snapshot', runId: id, kind, stage, epochsCompleted })
      }
    })
    this.followers.set(id, follower)
    void follower.start({ intervalMs: 1000, fromEnd: true })
  }

  private unfollow(id: string): void {
    void this.followers.get(id)?.stop()
    this.followers.delete(id)
  }

  /** A run another process of this data home trains (its training lock says which) is followed. */
  private async followOtherTrainer(): Promise<void> {
    const holder = await trainingLock(this.store.root).holder()
    if (!holder || holder.pid === process.pid || this.followers.has(holder.what)) return
    if (!RunId.safeParse(holder.what).success || !existsSync(join(this.store.dir(holder.what), 'run.json')))
      return
    // What it wrote before now is announced once, as the run as it stands; appends follow.
    this.emit({ type: 'run', run: await this.store.read(holder.what) })
    this.follow(holder.what)
  }

  /** Starts the trainer's worker (the one that trains and inspects) and records the backend it selects. */
  start(): void {
    void this.store.list().then(({ runs }) => {
      for (const run of runs) if (this.store.isAttached(run.id)) this.follow(run.id)
    })
    const watch = () => void this.followOtherTrainer().catch(() => {})
    watch()
    this.lockWatch = setInterval(watch, 2000)
    this.lockWatch.unref()
    void this.trainer.reconcile().catch(() => {})
    this.trainer.backend().then(
      (backend) => {
        this.backend = backend
        this.emit({ type: 'backend', backend, error: null })
      },
      (error: unknown) => {
        this.backendError = message(error)
        this.emit({ type: 'backend', backend: null, error: this.backendError })
      },
    )
  }

  async stop(): Promise<void> {
    this.offTrainer()
    if (this.lockWatch) clearInterval(this.lockWatch)
    await Promise.all([...this.followers.values()].map((f) => f.stop()))
    this.followers.clear()
    for (const controller of this.imports.values()) controller.abort()
    await this.trainer.shutdown()
  }

  readonly api: WorkbenchApi = {
    about: async (): Promise<AboutInfo> => ({
      appVersion: this.options.appVersion,
      versions: this.options.versions,
      dataHome: this.home,
      backend: this.backend,
      backendError: this.backendError,
      canPickFiles: this.options.pickPath !== undefined,
      torch: await torchEngineInfo(),
    }),

    // --- datasets ------------------------------------------------------------------------------------
    listDatasets: () => listDatasets(this.home),
    datasetSamples: (id, perClass) =>
      this.withReader(id, async (reader) => {
        const split: SplitName = reader.size('train') > 0 ? 'train' : 'test'
        const labels = reader.labels(split)
        const picked: number[][] = reader.manifest.classes.map(() => [])
        labels.forEach((label, index) => {
          const list = picked[label]
          if (list && list.length < perClass) list.push(index)
        })
        return this.images(reader, split, picked.flat())
      }),
    readImages: (id, split, indices) =>
      this.withReader(id, (reader) => {
        const size = reader.size(split)
        const bad = indices.find((i) => i >= size)
        if (bad !== undefined) throw new Error(`image ${bad} is outside the ${split} split (${size} images)`)
        return this.images(reader, split, indices)
      }),
    findImages: (id, split, classIndex, count) =>
      this.withReader(id, async (reader) => {
        if (classIndex >= reader.classes)
          throw new Error(`dataset ${id} has ${reader.classes} classes: no class ${classIndex}`)
        const found: number[] = []
        const labels = reader.labels(split)
        for (let i = 0; i < labels.length && found.length < count; i++)
          if (labels[i] === classIndex) found.push(i)
        return found
      }),
    importDataset: async (request) => {
      const importId = `imp-${this.nextImport++}`
      const controller = new AbortController()
      this.imports.set(importId, controller)
      const base = { type: 'import', importId, path: request.path } as const
      const emit = (rest: Omit<Extract<WorkbenchEvent, { type: 'import' }>, keyof typeof base>) =>
        this.emit({ ...base, ...rest })
      importDataset(request.path, {
        home: this.home,
        name: request.name,
        format: request.format,
        signal: controller.signal,
        onProgress: (progress) => emit({ state: 'progress', progress, dataset: null, error: null }),
      }).then(
        ({ manifest }) => emit({ state: 'done', progress: null, dataset: manifest, error: null }),
        (error: unknown) =>
          emit({
            state: controller.signal.aborted ? 'cancelled' : 'failed',
            progress: null,
            dataset: null,
            error: message(error),
          }),
      )
      return { importId }
    },
    cancelImport: async (importId) => {
      this.imports.get(importId)?.abort()
      return null
    },
    pickImportPath: async () => (this.options.pickPath ? this.options.pickPath() : null),
    renameDataset: (id, name) => renameDataset(id, name, this.home),
    removeDataset: async (id) => {
      await refuseIfDatasetInUse(this.home, id)
      await removeDataset(id, this.home)
      return null
    },

    // --- runs ----------------------------------------------------------------------------------------
    listRuns: async () => {
      const { runs, problems } = await this.store.list()
      return { runs, problems, attached: runs.filter((r) => this.store.isAttached(r.id)).map((r) => r.id) }
    },
    attachRun: async (path) => {
      const run = await this.store.attach(path)
      this.follow(run.id)
      this.emit({ type: 'run', run })
      return run
    },
    runHistory: async (id) => {
      const [run, log, snapshots] = await Promise.all([
        this.store.read(id),
        this.store.readLog(id),
        this.store.snapshotIndex(id),
      ])
      return { run, log, snapshots }
    },
    readSnapshot: async (id, kind, stage, epochsCompleted) => {
      const entry = (await this.store.snapshotIndex(id))
        .filter((e) => e.kind === kind && e.stage === stage && e.epochsCompleted === epochsCompleted)
        .at(-1)
      if (!entry)
        throw new Error(`run ${id} has no ${kind} snapshot of stage ${stage} after epoch ${epochsCompleted}`)
      return encodeSnapshotData(await this.store.readSnapshot(id, entry))
    },
    inspectImage: (request) => this.inspect(request),
    exportStage: (runId, stage) => this.export(runId, stage),
    startRun: async (request) => {
      const run = await createRun(this.store, request)
      try {
        await this.queue(run.id, { dataParallel: request.dataParallel })
      } catch (error) {
        // Refused (another process trains, too many processes): a run that never started is not kept.
        await this.store.remove(run.id).catch(() => {})
        throw error
      }
      return this.store.read(run.id)
    },
    pauseRun: async (id) => {
      this.trainer.pause(id)
      return null
    },
    resumeRun: async (id) => {
      const run = await this.store.read(id)
      if (run.status === 'paused' && this.trainer.activeRunId === id) this.trainer.resume(id)
      else await this.queue(id)
      return null
    },
    stopRun: async (id) => {
      await this.trainer.stop(id)
      return null
    },
    removeRun: async (id) => {
      if (this.trainer.activeRunId === id || this.trainer.queued.includes(id))
        throw new TrainingError(`run ${id} is training or queued: stop it first`)
      await this.store.remove(id)
      this.unfollow(id)
      return null
    },
    modelSummary: (config, stage) => this.summary(config, stage),
    listAblations: () => listAblations(this.store),
    estimateRun: (config) => this.estimate(config),

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
      throw new Error(
        `invalid arguments to ${method}: ${args.error.issues
          .map((i) => `${i.path.length ? `${i.path.join('.')}: ` : ''}${i.message}`)
          .join('; ')}`,
      )
    const implementation = this.api[method] as (...a: unknown[]) => Promise<unknown>
    return schema.result.parse(await implementation(...(args.data as unknown[])))
  }

  private emit(event: WorkbenchEvent): void {
    for (const listener of this.listeners) listener(event)
  }

  /** Queues a run; throws the trainer's refusal (finished, already queued, locked, dataset or checkpoint missing). */
  private async queue(id: string, options: SessionOptions = {}): Promise<void> {
    const { done } = await this.trainer.enqueue(id, options)
    done.catch(() => {})
  }

  private async withReader<T>(id: string, use: (reader: DatasetReader) => Promise<T>): Promise<T> {
    // Loaded on first use: the reader brings tfjs, which the rest of the host does not need.
    const { DatasetReader } = await import('../datasets/reader')
    const reader = await DatasetReader.open(id, this.home)
    try {
      return await use(reader)
    } finally {
      await reader.close()
    }
  }

  private async images(reader: DatasetReader, split: SplitName, indices: number[]) {
    const raw = await reader.readRaw(split, indices)
    return {
      split,
      shape: reader.manifest.shape,
      indices,
      labels: Array.from(raw.labels),
      pixels: encodeUint8(raw.pixels),
    }
  }

  private async inspect(request: InspectRequest): Promise<Inspection> {
    const found = await inspectRun(this.store, this.trainer.workerClient(), request)
    const { result } = found
    return {
      stage: found.stage,
      epochsCompleted: found.epochsCompleted,
      image: request.image,
      label: found.image.label,
      logits: encodeFloat32(result.logits),
      points: result.points.map((p) => ({
        point: p.point,
        student: encodeTensor(p.student),
        teacher: p.teacher ? encodeTensor(p.teacher) : null,
      })),
      gates: result.gates.map((g) => ({ block: g.block, values: encodeFloat32(g.values) })),
    }
  }

  /** Exports a fully binary stage into the run folder's export/ and reports its size. */
  private async export(runId: string, stage: string): Promise<ExportSummary> {
    const { exportRun } = await import('../deploy/export-run')
    const dir = join(this.store.dir(runId), 'export')
    await mkdir(dir, { recursive: true })
    const file = join(dir, `${stage}.r2bx`)
    const report = await exportRun(this.store, runId, stage, file)
    return {
      file: report.file,
      fileBytes: report.fileBytes,
      minimumBytes: report.minimumBytes,
      float32Bytes: report.float32Bytes,
      epochsCompleted: report.epochsCompleted,
    }
  }

  /**
   * Step times of a config measured here, before it runs: on the tfjs worker (the config's own stages), or by
   * the PyTorch engine's step bench (the R2B stage of the same kind). A small batch is timed and scaled
   * linearly, so that a paper preset is estimated in seconds, not in its own first epoch.
   */
  private async estimate(config: RunConfig): Promise<RunEstimate> {
    const listing = await listDatasets(this.home)
    const dataset = listing.datasets.find((d) => d.id === config.data.dataset)
    const pixels = config.data.inputSize ** 2
    // Small enough that a paper preset's networks are timed in well under a minute on a CPU backend.
    const batch = Math.max(
      1,
      Math.min(
        32,
        ...config.stages.map((s) => s.batchSize),
        Math.floor(32_768 / pixels),
        Math.floor(8 / config.model.width ** 2),
      ),
    )
    const stepsOf = (stage: RunConfig['stages'][number]) => {
      const perEpoch =
        stage.stepsPerEpoch > 0
          ? stage.stepsPerEpoch
          : dataset
            ? Math.ceil(dataset.splits.train / stage.batchSize)
            : null
      if (perEpoch === null) throw new TrainingError(`dataset "${config.data.dataset}" is not in the store`)
      return perEpoch * stage.epochs
    }
    let measured: Record<string, number>
    let device: string
    let basis: string
    if (config.engine === 'torch') {
      const info = await torchEngineInfo()
      if (!info.available) throw new TrainingError(info.reason ?? 'the PyTorch engine is not available')
      const result = await benchTorchStep({
        width: config.model.width,
        batch,
        input: config.data.inputSize,
        channels: config.data.channels,
        steps: 3,
      })
      const kind = (s: RunConfig['stages'][number]) =>
        s.student.architecture === 'resnet'
          ? 'teacher'
          : s.student.activation === 'tanh'
            ? 'tanh'
            : s.student.weights === 'sign'
              ? 'bnn'
              : 'ban'
      measured = Object.fromEntries(
        config.stages.map((s) => [s.name, result.timings[kind(s)]?.medianMs ?? 0]),
      )
      device = result.device
      basis = `PyTorch ${result.torch}: median of 3 steps of the R2B stage of the same kind, batch ${batch}, synthetic inputs`
    } else {
      if (this.trainer.activeRunId)
        throw new TrainingError(
          `the worker is training run ${this.trainer.activeRunId}: an estimate times real steps, so it waits until the worker is idle`,
        )
      const backend = await this.trainer.backend()
      const requestId = this.nextBench++
      const worker = this.trainer.workerClient()
      const answer = worker.waitForEvent(
        (event): event is Extract<WorkerEvent, { type: 'bench-result' }> =>
          event.type === 'bench-result' && event.requestId === requestId,
        'the step times',
        (event) => (event.type === 'bench-failed' && event.requestId === requestId ? event.message : null),
      )
      worker.send({ type: 'bench-step', requestId, config, batchSize: batch, steps: 2 })
      measured = (await answer).stepMs
      device = backend.backend
      basis = `tfjs on ${backend.backend}: median of 2 steps (after 1 warm-up) of each stage's own networks, batch ${batch}, synthetic inputs`
    }
    const stages = config.stages.map((stage) => {
      const stepMs = ((measured[stage.name] ?? 0) * stage.batchSize) / batch
      const steps = stepsOf(stage)
      return { stage: stage.name, stepMs, steps, seconds: (steps * stepMs) / 1000 }
    })
    return {
      engine: config.engine,
      device,
      measuredBatch: batch,
      stages,
      totalSeconds: stages.reduce((sum, s) => sum + s.seconds, 0),
      basis: `${basis}${batch < Math.max(...config.stages.map((s) => s.batchSize)) ? `, scaled linearly to each stage's batch` : ''}`,
    }
  }

  private async summary(config: RunConfig, stageName: string) {
    const stage = config.stages.find((s) => s.name === stageName)
    if (!stage) throw new Error(`the config has no stage "${stageName}"`)
    // tfjs is loaded on first use, in this process, on its CPU backend: the summary is one batch-1 pass.
    const [{ summariseModel }, { modelBuild }, { initBackend }] = await Promise.all([
      import('../engine/summary'),
      import('../engine/models'),
      import('../backend/backend'),
    ])
    await initBackend('cpu')
    return summariseModel(modelBuild(config, stage.student), stage.name)
  }
}
