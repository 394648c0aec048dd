/**
 * A run's training inside the worker: opens the dataset read-only, drives the engine's pipeline and sends
 * every record back to main, which persists it. Pause holds the pipeline between steps; stop ends it at the
 * next step boundary (the last epoch checkpoint stays the resume point).
 */
import * as tf from '@tensorflow/tfjs'
import type { WorkerCommand, WorkerEvent } from '../../shared/worker-protocol'
import { openDataset, runReaderOptions } from '../datasets/reader'
import { runPipeline } from '../engine/pipeline'

type TrainCommand = Extract<WorkerCommand, { type: 'train' }>

export class TrainingJob {
  private readonly signal = { aborted: false }
  private pause: { promise: Promise<void>; release: () => void } | null = null

  constructor(
    private readonly command: TrainCommand,
    private readonly send: (event: WorkerEvent) => void,
  ) {}

  get runId(): string {
    return this.command.runId
  }

  async run(): Promise<void> {
    const { config, home, resume, external, runId } = this.command
    const reader = await openDataset(config.data.dataset, home, runReaderOptions(config.data))
    try {
      const pipeline = runPipeline({
        config,
        data: reader,
        signal: this.signal,
        resume: resume ?? undefined,
        loadStage: async (otherRun, stage) => {
          const checkpoint = external[`run:${otherRun}/${stage}`]
          if (!checkpoint) throw new Error(`run:${otherRun}/${stage} was not provided to the worker`)
          return checkpoint
        },
      })
      let next = await pipeline.next()
      while (!next.done) {
        const record = next.value
        this.send({ type: 'record', runId, record: { ...record } })
        if (record.kind === 'checkpoint') {
          this.send({
            type: 'memory',
            runId,
            stage: record.stage,
            epochsCompleted: record.epochsCompleted,
            numTensors: tf.memory().numTensors,
            rssBytes: process.memoryUsage().rss,
          })
        }
        if (this.pause) await this.pause.promise
        next = await pipeline.next()
      }
      next.value.final?.dispose()
      this.send({ type: 'train-done', runId, stopped: next.value.stopped })
    } finally {
      await reader.close()
    }
  }

  setPaused(paused: boolean): void {
    if (paused && !this.pause) {
      let release = () => {}
      const promise = new Promise<void>((resolve) => (release = resolve))
      this.pause = { promise, release }
      this.send({ type: 'paused', runId: this.runId })
    } else if (!paused && this.pause) {
      this.pause.release()
      this.pause = null
      this.send({ type: 'resumed', runId: this.runId })
    }
  }

  stop(): void {
    this.signal.aborted = true
    this.setPaused(false)
  }
}
