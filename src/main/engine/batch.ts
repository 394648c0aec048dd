import type * as tf from '@tensorflow/tfjs'

/**
 * One training or evaluation batch as the engine consumes it. Produced by the dataset reader (or a synthetic
 * source in tests); the consumer disposes both tensors.
 */
export interface Batch {
  /** Normalised float32 images, NHWC. */
  images: tf.Tensor4D
  /** float32 [N, classes] target distributions: one-hot, or mixed by mixup / label smoothing. */
  labels: tf.Tensor2D
}
