/** Cross-entropy on labels and logit matching (Hinton's knowledge distillation). */
import * as tf from '@tensorflow/tfjs'

/**
 * Mean cross-entropy against target distributions [N, K] (one-hot, or mixed by mixup), with optional label
 * smoothing: targets·(1 − ε) + ε/K.
 */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor2D, labelSmoothing = 0): tf.Scalar {
  return tf.tidy(() => {
    const classes = logits.shape[1]
    const smoothed =
      labelSmoothing > 0 ? tf.add(tf.mul(targets, 1 - labelSmoothing), labelSmoothing / classes) : targets
    return tf.neg(tf.mean(tf.sum(tf.mul(smoothed, tf.logSoftmax(logits)), 1))) as tf.Scalar
  })
}

/** T²·KL(softmax(t/T) ‖ softmax(s/T)), averaged over the batch (the weight is applied by the caller). */
export function distillationLoss(student: tf.Tensor2D, teacher: tf.Tensor2D, temperature = 1): tf.Scalar {
  return tf.tidy(() => {
    const logT = tf.logSoftmax(tf.div(teacher, temperature))
    const logS = tf.logSoftmax(tf.div(student, temperature))
    const kl = tf.sum(tf.mul(tf.exp(logT), tf.sub(logT, logS)), 1)
    return tf.mul(tf.mean(kl), temperature * temperature) as tf.Scalar
  })
}

/** Number of rows whose target class (argmax of the targets) is the top-1 and within the top-k logits. */
export function topKCorrect(
  logits: tf.Tensor2D,
  targets: tf.Tensor2D,
  k = 5,
): { top1: tf.Scalar; topK: tf.Scalar } {
  return tf.tidy(() => {
    const labels = tf.argMax(targets, 1)
    const kk = Math.min(k, logits.shape[1])
    const { indices } = tf.topk(logits, kk)
    const hits = tf.cast(tf.equal(indices, tf.expandDims(tf.cast(labels, 'int32'), 1)), 'float32')
    const top1 = tf.sum(tf.slice(hits, [0, 0], [-1, 1]))
    return { top1: top1 as tf.Scalar, topK: tf.sum(hits) as tf.Scalar }
  })
}
