/**
 * The deployment's correctness figure: on a run's test split, the packed engine against the training graph's
 * eval forward for the same checkpoint: top-1 agreement and the largest logit difference.
 */
import * as tf from '@tensorflow/tfjs'
import { DatasetReader, runReaderOptions } from '../datasets/reader'
import { modelFromCheckpoint } from '../engine/checkpoint'
import type { RunStore } from '../runs/run-store'
import { DeployError } from './errors'
import { foldCheckpoint } from './fold'
import { decodeExport, encodeExport } from './format'
import type { BinaryKernels } from './packed-model'
import { PackedModel } from './packed-model'

/**
 * Float rounding alone (folded BN, another summation order) moves logits by about 1e-6 of their size; an image
 * beyond 1e-3 has had a binary activation flip because a BN output sat within rounding of 0.
 */
export const LOGIT_TOLERANCE = 1e-3

export interface Agreement {
  images: number
  /** Images whose packed top-1 equals the float graph's. */
  agreeing: number
  agreement: number
  /** Largest |packed − graph| over all logits, and the same relative to the largest |graph logit|. */
  maxLogitDiff: number
  maxRelativeDiff: number
  /** Relative tolerance on an image's logits (of its largest |graph logit|) and the images within it. */
  tolerance: number
  withinTolerance: number
  /** Top-1 accuracy of each against the labels. */
  packedTop1: number
  graphTop1: number
  kernels: string
}

export async function measureAgreement(
  store: RunStore,
  runId: string,
  stage: string,
  kernels: BinaryKernels,
  limit = 0,
): Promise<Agreement> {
  const run = await store.read(runId)
  const lines = (await store.checkpoints(runId)).filter((l) => l.stage === stage)
  const line = lines.find((l) => l.final) ?? lines.at(-1)
  if (!line) throw new DeployError(`stage ${stage} of run ${runId} has no checkpoint`)
  const checkpoint = await store.readCheckpoint(runId, line)
  const reader = await DatasetReader.open(
    run.config.data.dataset,
    store.home,
    runReaderOptions(run.config.data),
  )
  const folded = foldCheckpoint(checkpoint, {
    runId,
    stage,
    classes: reader.manifest.classes,
    normalisation: reader.manifest.stats,
  })
  const packed = new PackedModel(decodeExport(encodeExport(folded.meta, folded.tensors).bytes), kernels)
  const graph = modelFromCheckpoint(checkpoint)
  let images = 0
  let agreeing = 0
  let packedRight = 0
  let graphRight = 0
  let maxDiff = 0
  let maxLogit = 0
  let withinTolerance = 0
  try {
    for await (const batch of reader.testBatches({ batchSize: 64, limit })) {
      const [a, b, labels] = await Promise.all([
        packed.predict(batch.images).data(),
        graph.predict(batch.images).data(),
        tf.argMax(batch.labels, 1).data(),
      ])
      tf.dispose([batch.images, batch.labels])
      const k = run.config.data.classes
      for (let i = 0; i < labels.length; i++) {
        let ta = 0
        let tb = 0
        let imageDiff = 0
        let imageLogit = 0
        for (let c = 0; c < k; c++) {
          const va = a[i * k + c]!
          const vb = b[i * k + c]!
          if (va > a[i * k + ta]!) ta = c
          if (vb > b[i * k + tb]!) tb = c
          imageDiff = Math.max(imageDiff, Math.abs(va - vb))
          imageLogit = Math.max(imageLogit, Math.abs(vb))
        }
        maxDiff = Math.max(maxDiff, imageDiff)
        maxLogit = Math.max(maxLogit, imageLogit)
        if (imageDiff <= LOGIT_TOLERANCE * imageLogit) withinTolerance++
        images++
        if (ta === tb) agreeing++
        if (ta === labels[i]) packedRight++
        if (tb === labels[i]) graphRight++
      }
    }
  } finally {
    packed.dispose()
    graph.dispose()
    await reader.close()
  }
  return {
    images,
    agreeing,
    agreement: agreeing / images,
    maxLogitDiff: maxDiff,
    maxRelativeDiff: maxDiff / maxLogit,
    tolerance: LOGIT_TOLERANCE,
    withinTolerance,
    packedTop1: packedRight / images,
    graphTop1: graphRight / images,
    kernels: kernels.name,
  }
}
