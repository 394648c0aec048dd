/**
 * Batch augmentation on tensors (random horizontal flip, pad-and-crop, mixup) for in-memory data sources; the
 * dataset reader augments on its own as it decodes. Draws come from a seeded Rng.
 */
import * as tf from '@tensorflow/tfjs'
import type { AugmentSpec } from '../../shared/run-config'
import type { Batch } from './batch'
import type { Rng } from './random'

/** Returns a new batch (the caller still owns and disposes the input). */
export function augmentBatch(batch: Batch, spec: AugmentSpec, rng: Rng): Batch {
  if (spec.rotationDegrees > 0) throw new Error('tensor augmentation does not rotate: use the dataset reader')
  return tf.tidy(() => {
    let images = batch.images
    let labels = batch.labels
    const [n, h, w, c] = images.shape
    if (spec.flip) {
      const mask = tf.tensor4d(
        Array.from({ length: n }, () => (rng.next() < 0.5 ? 1 : 0)),
        [n, 1, 1, 1],
      )
      images = tf.add(tf.mul(tf.reverse(images, 2), mask), tf.mul(images, tf.sub(1, mask))) as tf.Tensor4D
    }
    if (spec.cropPadding > 0) {
      const p = spec.cropPadding
      const padded = tf.mirrorPad(
        images,
        [
          [0, 0],
          [p, p],
          [p, p],
          [0, 0],
        ],
        'symmetric',
      )
      const crops = Array.from({ length: n }, (_, i) =>
        tf.slice(padded, [i, rng.int(2 * p + 1), rng.int(2 * p + 1), 0], [1, h, w, c]),
      )
      images = tf.concat(crops, 0) as tf.Tensor4D
    }
    if (spec.mixupAlpha > 0) {
      const lambda = rng.beta(spec.mixupAlpha, spec.mixupAlpha)
      const partner = tf.tensor1d(Int32Array.from(rng.shuffle(n)), 'int32')
      images = tf.add(tf.mul(images, lambda), tf.mul(tf.gather(images, partner), 1 - lambda)) as tf.Tensor4D
      labels = tf.add(tf.mul(labels, lambda), tf.mul(tf.gather(labels, partner), 1 - lambda)) as tf.Tensor2D
    }
    if (images === batch.images) images = tf.clone(images)
    if (labels === batch.labels) labels = tf.clone(labels)
    return { images, labels }
  })
}

export function augments(spec: AugmentSpec): boolean {
  return spec.flip || spec.cropPadding > 0 || spec.rotationDegrees > 0 || spec.mixupAlpha > 0
}
