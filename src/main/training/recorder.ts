/**
 * The recorder: writes what a tfjs worker reports into the run folder, then says what changed. Every record
 * is on disk before anyone hears of it. While its process trains the run, the run's status is the trainer's
 * to say: whatever another process wrote there meanwhile is overwritten, not adopted.
 */
import type { EngineRecord } from '../../shared/records'
import type { LogLine, RunMeta, SnapshotIndexEntry } from '../../shared/runs'
import type { RunStore } from '../runs/run-store'

export type Recorded =
  | { type: 'record'; record: LogLine }
  | { type: 'snapshot'; entry: SnapshotIndexEntry }
  | { type: 'run'; run: RunMeta }

export class RunRecorder {
  constructor(
    private readonly store: RunStore,
    private readonly runId: string,
    /** The status this process says the run has (running or paused). */
    private readonly status: () => Pick<RunMeta, 'status' | 'error'>,
  ) {}

  async record(record: EngineRecord): Promise<Recorded[]> {
    switch (record.kind) {
      case 'attention':
      case 'gates':
        return [{ type: 'snapshot', entry: await this.store.writeSnapshot(this.runId, record) }]
      case 'checkpoint': {
        const meta = await this.store.read(this.runId)
        const spec = meta.config.stages.find((s) => s.name === record.stage)
        const line = await this.store.writeCheckpoint(
          this.runId,
          record,
          record.epochsCompleted === spec?.epochs,
        )
        const run = await this.progress(record.stage, (s) => ({
          ...s,
          epochsCompleted: line.epochsCompleted,
        }))
        return [{ type: 'run', run }]
      }
      default: {
        await this.store.appendLog(this.runId, [record])
        const out: Recorded[] = []
        if (record.kind === 'stage-start')
          out.push({
            type: 'run',
            run: await this.progress(record.stage, (s) => ({ ...s, status: 'running' })),
          })
        else if (record.kind === 'epoch') {
          const { top1, top5 } = record.test
          out.push({
            type: 'run',
            run: await this.progress(record.stage, (s) => ({ ...s, testTop1: top1, testTop5: top5 })),
          })
        } else if (record.kind === 'stage-end') {
          const status = record.stopped ? 'stopped' : 'finished'
          const test = record.test
          // A stage stopped before finishing an epoch this session keeps the score it had.
          const run = await this.progress(record.stage, (s) =>
            test ? { ...s, status, testTop1: test.top1, testTop5: test.top5 } : { ...s, status },
          )
          out.push({ type: 'run', run })
        }
        out.unshift({ type: 'record', record })
        return out
      }
    }
  }

  private progress(
    stage: string,
    change: (progress: RunMeta['stages'][number]) => RunMeta['stages'][number],
  ): Promise<RunMeta> {
    return this.store.update(this.runId, (m) => ({
      ...m,
      ...this.status(),
      stages: m.stages.map((s) => (s.name === stage ? change(s) : s)),
    }))
  }
}

/** The advice for a step whose loss is no longer finite; null while it is. */
export function nonFiniteLoss(record: EngineRecord): string | null {
  if (record.kind !== 'step' || Number.isFinite(record.loss.total)) return null
  return (
    `the loss became ${record.loss.total} at stage ${record.stage}, step ${record.step}: ` +
    'lower the learning rate (e.g. --set stages.<i>.optimizer.learningRate=...) and resume or start again'
  )
}
