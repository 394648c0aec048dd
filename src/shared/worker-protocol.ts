import { z } from 'zod'
import { BackendReport } from './backend'
import { Checkpoint } from './checkpoint'
import { DatasetId } from './datasets'
import { EngineRecord, InspectionResult } from './records'
import { RunConfig } from './run-config'

/**
 * The one contract between main and the training worker (an Electron utilityProcess in the app, a child
 * process in the CLI, headless host and tests). Every message is validated on arrival with these schemas.
 * Heavy payloads (checkpoints, attention maps, gate values) travel as ArrayBuffers and typed arrays, which
 * both channels carry as binary (structured clone), never as JSON number lists.
 */

/** main → worker */
export const WorkerCommand = z.discriminatedUnion('type', [
  /** Train the small backend-check network on the bundled data for a few steps. */
  z.object({
    type: z.literal('check'),
    steps: z.number().int().min(1).max(10_000),
    batchSize: z.number().int().min(1).max(1024),
  }),
  /** Train a run's pipeline. The worker only reads the dataset folder; everything it produces comes back. */
  z.object({
    type: z.literal('train'),
    runId: z.string(),
    config: RunConfig,
    /** The data dir whose store holds the config's dataset (`config.data.dataset`, an id): the worker opens
     * it there, read-only. */
    home: z.string().min(1),
    /** Final checkpoints of completed stages, and the last epoch checkpoint of the interrupted one. */
    resume: z
      .object({ completed: z.record(z.string(), Checkpoint), current: Checkpoint.nullable() })
      .nullable(),
    /** Final checkpoints of other runs' stages that this run refers to (`run:<id>/<stage>`). */
    external: z.record(z.string(), Checkpoint),
  }),
  z.object({ type: z.literal('pause') }),
  z.object({ type: z.literal('resume') }),
  /** Stop at the next step boundary; the last epoch checkpoint is kept. */
  z.object({ type: z.literal('stop') }),
  /** Maps and gates of one image under a checkpoint (and its teacher's maps). */
  z.object({
    type: z.literal('inspect'),
    requestId: z.int(),
    checkpoint: Checkpoint,
    teacher: Checkpoint.nullable(),
    /** The test image of the run's dataset, read and normalised by the worker as for training's probes. */
    home: z.string().min(1),
    dataset: DatasetId,
    image: z.int().nonnegative(),
    /** The run's input side when it crops a larger store (data.storedSize > 0). */
    inputSize: z.int().positive().optional(),
    form: z.enum(['paper', 'larq']),
  }),
  /** Time a few training steps of each stage of a config on synthetic inputs (an estimate before a run). */
  z.object({
    type: z.literal('bench-step'),
    requestId: z.int(),
    config: RunConfig,
    batchSize: z.int().min(1).max(1024),
    steps: z.int().min(1).max(20),
  }),
  z.object({ type: z.literal('shutdown') }),
])
export type WorkerCommand = z.infer<typeof WorkerCommand>

/** worker → main */
export const WorkerEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready'), backend: BackendReport }),
  z.object({
    type: z.literal('check-step'),
    step: z.number().int(),
    steps: z.number().int(),
    loss: z.number(),
    stepMs: z.number(),
  }),
  z.object({
    type: z.literal('check-done'),
    firstLoss: z.number(),
    lastLoss: z.number(),
    meanStepMs: z.number(),
    imagesPerSecond: z.number(),
  }),
  z.object({ type: z.literal('record'), runId: z.string(), record: EngineRecord }),
  /** After each epoch's checkpoint: the worker's tensor count and resident memory (they must stay flat). */
  z.object({
    type: z.literal('memory'),
    runId: z.string(),
    stage: z.string(),
    epochsCompleted: z.int(),
    numTensors: z.int(),
    rssBytes: z.number(),
  }),
  z.object({ type: z.literal('paused'), runId: z.string() }),
  z.object({ type: z.literal('resumed'), runId: z.string() }),
  z.object({ type: z.literal('train-done'), runId: z.string(), stopped: z.boolean() }),
  z.object({
    type: z.literal('inspect-result'),
    requestId: z.int(),
    result: InspectionResult,
  }),
  z.object({ type: z.literal('inspect-failed'), requestId: z.int(), message: z.string() }),
  /** Median milliseconds per step of each stage, by stage name. */
  z.object({
    type: z.literal('bench-result'),
    requestId: z.int(),
    stepMs: z.record(z.string(), z.number()),
  }),
  z.object({ type: z.literal('bench-failed'), requestId: z.int(), message: z.string() }),
  z.object({ type: z.literal('failed'), message: z.string(), runId: z.string().optional() }),
])
export type WorkerEvent = z.infer<typeof WorkerEvent>
