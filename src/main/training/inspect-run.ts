/**
 * Interactive inspection of a run: the attention maps (student and its teacher) and gate values of any test
 * image under any saved checkpoint, computed by the worker. Shared by the CLI and the API host.
 */
import type { InspectRequest } from '../../shared/api'
import { oneLine } from '../../shared/errors'
import type { InspectionResult } from '../../shared/records'
import { parseStageRef } from '../../shared/run-config'
import type { CheckpointLine, RunMeta } from '../../shared/runs'
import type { WorkerEvent } from '../../shared/worker-protocol'
import type { RunStore } from '../runs/run-store'
import { TrainingError } from './errors'
import type { WorkerClient } from './worker-client'

export interface RunInspection {
  stage: string
  /** Epochs of the stage completed at the checkpoint inspected. */
  epochsCompleted: number
  teacher: string | null
  image: {
    index: number
    label: number
    className: string
    pixels: Uint8Array
    shape: [number, number, number]
  }
  result: InspectionResult
  classes: string[]
}

let nextRequest = 1

/** The checkpoint to inspect and the teacher's (final) checkpoint, validated against what the run has. */
export async function chooseCheckpoints(store: RunStore, run: RunMeta, request: InspectRequest) {
  const lines = await store.checkpoints(run.id)
  if (lines.length === 0) throw new TrainingError(`run ${run.id} has no checkpoint yet: nothing to inspect`)
  const stage = request.stage ?? (lines.at(-1) as CheckpointLine).stage
  const spec = run.config.stages.find((s) => s.name === stage)
  if (!spec)
    throw new TrainingError(
      `run ${run.id} has no stage "${stage}": its stages are ${run.config.stages.map((s) => s.name).join(', ')}`,
    )
  const ofStage = lines.filter((l) => l.stage === stage)
  if (ofStage.length === 0) throw new TrainingError(`stage ${stage} of run ${run.id} has no checkpoint yet`)
  const line =
    request.epochsCompleted === null
      ? (ofStage.at(-1) as CheckpointLine)
      : ofStage.find((l) => l.epochsCompleted === request.epochsCompleted)
  if (!line)
    throw new TrainingError(
      `stage ${stage} has checkpoints after epochs ${ofStage.map((l) => l.epochsCompleted).join(', ')}, not ${request.epochsCompleted}`,
    )
  // The teacher is a stage of this run (`stage:<name>`) or of another (`run:<id>/<name>`): its final checkpoint.
  let teacher: { name: string; runId: string; line: CheckpointLine } | null = null
  const target = parseStageRef(spec.teacher)
  if (target.kind !== 'none') {
    const [teacherRun, name] = target.kind === 'stage' ? [run.id, target.stage] : [target.run, target.stage]
    const teacherLines = teacherRun === run.id ? lines : await store.checkpoints(teacherRun)
    const teacherLine = teacherLines.filter((l) => l.stage === name && l.final).at(-1)
    if (teacherLine) teacher = { name, runId: teacherRun, line: teacherLine }
  }
  return { stage, line, teacher }
}

export async function inspectRun(
  store: RunStore,
  worker: WorkerClient,
  request: InspectRequest,
): Promise<RunInspection> {
  const runId = request.run
  const run = await store.read(runId)
  const { stage, line, teacher } = await chooseCheckpoints(store, run, request)
  // Loaded here, not at the top: the reader brings tfjs, which the host should not load at start-up.
  const { DatasetReader, runReaderOptions } = await import('../datasets/reader')
  const reader = await DatasetReader.open(
    run.config.data.dataset,
    store.home,
    runReaderOptions(run.config.data),
  ).catch(() => {
    throw new TrainingError(`dataset "${run.config.data.dataset}" of run ${runId} is not in the store`)
  })
  try {
    const count = reader.size('test')
    if (!Number.isInteger(request.image) || request.image < 0 || request.image >= count)
      throw new TrainingError(
        `--image must be a test image index from 0 to ${count - 1}, got ${request.image}`,
      )
    // The pixels as stored, for showing the image; the worker reads and normalises its own copy.
    const raw = await reader.readRaw('test', [request.image])
    const checkpoint = await store.readCheckpoint(runId, line)
    const teacherCheckpoint = teacher ? await store.readCheckpoint(teacher.runId, teacher.line) : null
    const spec = run.config.stages.find((s) => s.name === stage)!
    const requestId = nextRequest++
    const answer = worker
      .waitForEvent(
        (event): event is Extract<WorkerEvent, { type: 'inspect-result' }> =>
          event.type === 'inspect-result' && event.requestId === requestId,
        'the inspection result',
        (event) => (event.type === 'inspect-failed' && event.requestId === requestId ? event.message : null),
      )
      .catch((error: unknown) => {
        throw new TrainingError(`inspection failed: ${oneLine(error)}`)
      })
    worker.send({
      type: 'inspect',
      requestId,
      checkpoint,
      teacher: teacherCheckpoint,
      home: store.home,
      dataset: run.config.data.dataset,
      image: request.image,
      ...runReaderOptions(run.config.data),
      form: spec.losses.attention.form,
    })
    const { result } = await answer
    const label = raw.labels[0] ?? 0
    return {
      stage,
      epochsCompleted: line.epochsCompleted,
      teacher: teacher?.name ?? null,
      image: {
        index: request.image,
        label,
        className: reader.manifest.classes[label] ?? String(label),
        pixels: reader.inputPixels(raw.pixels),
        shape: [...reader.inputShape],
      },
      result,
      classes: reader.manifest.classes,
    }
  } finally {
    await reader.close()
  }
}
