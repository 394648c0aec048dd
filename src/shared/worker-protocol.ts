import { z } from 'zod'
import { BackendReport } from './backend'

/**
 * The one contract between main and the training worker (an Electron utilityProcess in the app, a child
 * process in the CLI, headless host and tests). Every message is validated on arrival with these schemas.
 */

/** main → worker */
export const WorkerCommand = z.discriminatedUnion('type', [
  /** Train the small backend-check network on the bundled data for a few steps. */
  z.object({
    type: z.literal('check'),
    steps: z.number().int().min(1).max(10_000),
    batchSize: z.number().int().min(1).max(1024),
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
  z.object({ type: z.literal('failed'), message: z.string() }),
])
export type WorkerEvent = z.infer<typeof WorkerEvent>
